#!/usr/bin/env python3
"""Integration tests for eddy: the real program and the examples, over
real sockets on 127.0.0.1 / ::1.

    python3 tests/integration/run.py --eddy build/eddy --example build/examples/seed_server \
        --example-sse build/examples/sse_clock --example-upload build/examples/upload_sink
    python3 tests/integration/run.py ... -k keepalive     # only tests whose name has 'keepalive'

Standard library only.  Every test starts its own server on port 0 and reads
the port from the ready line; every process started is killed on the way out,
whatever happens.  Output: one line per test (ok, FAIL or SKIP), then exactly
one summary line "N passed, N failed, N skipped"; the exit status is non-zero
if anything failed.

Timing assertions are deliberately loose (this runs on small, noisy machines):
they tell "concurrent" from "serial", never fast from slow.
"""

import argparse
import contextlib
import email.utils
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib
import http.client
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WWW = REPO / "www"
INDEX_HTML = (WWW / "index.html").read_bytes()
NOT_FOUND_HTML = (WWW / "404.html").read_bytes()

EDDY = None       # absolute path of build/eddy, from the command line
EDDY_ARGS = []    # flags every served eddy gets (--eddy-arg), like --no-io-uring
EXAMPLE = None    # absolute path of build/examples/seed_server
SSE_EXAMPLE = None  # absolute path of build/examples/sse_clock
UPLOAD_EXAMPLE = None  # absolute path of build/examples/upload_sink

READY_RE = re.compile(r"^(eddy|seed_server|sse_clock|upload_sink) listening on http://(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)/$")
TEST_TIMEOUT = 25        # seconds any single test may take before it is failed
START_TIMEOUT = 5        # seconds for a ready line
IO_TIMEOUT = 5           # default socket timeout

# --------------------------------------------------------------- failures --


class Failure(AssertionError):
    """A test's expectation did not hold."""


class Skip(Exception):
    """The test cannot run here (no ::1, no curl): it prints SKIP and is
    counted apart, neither passed nor failed."""


class TestTimeout(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def check_eq(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


def short(data, n=120):
    r = repr(data)
    return r if len(r) <= n else r[:n] + "..."


# -------------------------------------------------------------- processes --

_PROCS = []   # every Popen we started, so nothing outlives the run


def _die_with_runner():
    """In the child, before exec: be SIGKILLed if the runner dies, even by
    SIGKILL (Linux prctl PR_SET_PDEATHSIG; a no-op elsewhere)."""
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


def reap(proc):
    """Kills proc (by its own pid) if it still runs, and waits for it."""
    if proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    for f in (proc.stdout, proc.stderr):
        if f:
            with contextlib.suppress(Exception):
                f.close()


def reap_all():
    for p in _PROCS:
        reap(p)


class Server:
    """A running eddy (or seed_server) and the addresses it announced."""

    def __init__(self, proc, addrs, errfile):
        self.proc = proc
        self.addrs = addrs            # [(host, port), ...] in announce order
        self.addr = addrs[0] if addrs else None   # none: the caller reads the lines
        self.errfile = errfile
        self.expect_exit = False      # set when a test stops the server itself

    @property
    def url(self):
        host, port = self.addr
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def stderr_text(self):
        self.errfile.seek(0)
        return self.errfile.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def check_alive(self):
        if not self.alive():
            raise Failure(f"server exited with status {self.proc.returncode}; "
                          f"stderr: {short(self.stderr_text(), 300)}")

    def signal(self, sig):
        self.expect_exit = True
        self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failure(f"server still running {timeout} s after being told to stop")


def read_stdout_lines(proc, errfile, take, timeout=START_TIMEOUT):
    """Hands each line proc prints on stdout to take(text) until it returns
    True; fails when proc exits first or the time is up."""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure(f"no ready line within {timeout} s (got {short(buf)})")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            proc.wait(timeout=2)
            errfile.seek(0)
            raise Failure(f"exited with status {proc.returncode} before its ready line; "
                          f"stderr: {short(errfile.read(), 300)}")
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if take(line.decode(errors="replace")):
                return


def read_ready_lines(proc, count, errfile, timeout=START_TIMEOUT):
    """Reads `count` ready lines from proc's stdout; returns [(host, port)]."""
    addrs = []

    def take(text):
        m = READY_RE.match(text)
        if not m:
            raise Failure(f"unexpected ready line {short(text)}")
        addrs.append((m.group(2).strip("[]"), int(m.group(3))))
        return len(addrs) == count

    if count:
        read_stdout_lines(proc, errfile, take, timeout)
    return addrs


@contextlib.contextmanager
def spawn_server(argv, count):
    errfile = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=errfile, cwd=str(REPO), preexec_fn=_die_with_runner)
    _PROCS.append(proc)
    try:
        srv = Server(proc, read_ready_lines(proc, count, errfile), errfile)
        try:
            yield srv
        except Failure as e:
            # A lost response often means the server died: say so.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.3)
            if proc.returncode is not None and proc.returncode < 0:
                raise Failure(f"{e} [server killed by signal {-proc.returncode}]") from None
            raise
        # The body of the test passed; a server that died on its own under
        # it is still a failure (a crash the test did not look for).
        if not srv.expect_exit and not srv.alive():
            srv.check_alive()
    finally:
        reap(proc)
        errfile.close()


def start_eddy(*args, listen=("127.0.0.1:0",), root=WWW):
    argv = [EDDY]
    for addr in listen:
        argv += ["--listen", addr]
    argv += ["--root", str(root), *args, *EDDY_ARGS]
    return spawn_server(argv, len(listen))


def start_example(addr="127.0.0.1:0", root=WWW):
    return spawn_server([EXAMPLE, addr, str(root)], 1)


def start_sse_example(addr="127.0.0.1:0"):
    # It takes eddy's --no-io-uring, so its streams run on both I/O paths.
    extra = [a for a in EDDY_ARGS if a == "--no-io-uring"]
    return spawn_server([SSE_EXAMPLE, "--listen", addr, *extra], 1)


def start_upload_example(*args, addr="127.0.0.1:0"):
    extra = [a for a in EDDY_ARGS if a == "--no-io-uring"]
    return spawn_server([UPLOAD_EXAMPLE, "--listen", addr, *args, *extra], 1)


def run_eddy_to_exit(*args, timeout=3):
    """Runs eddy expecting it to exit by itself; returns CompletedProcess."""
    try:
        return subprocess.run([EDDY, *args], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, cwd=str(REPO))
    except subprocess.TimeoutExpired:   # run() has killed it
        raise Failure(f"eddy {' '.join(args)} did not exit within {timeout} s "
                      "(it started serving?)")


# ----------------------------------------------------------------- client --


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers        # [(name, value)] as received
        self.body = body

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def __repr__(self):
        return f"<{self.version} {self.status} {self.reason} body={short(self.body, 40)}>"


def parse_head(head):
    """A response head (without its blank line) as a Response with no body."""
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"^(HTTP/\d\.\d) (\d{3}) ?(.*)$", lines[0])
    if not m:
        raise Failure(f"bad status line {short(lines[0])}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        check(sep and name and name == name.strip(), f"bad header line {short(line)}")
        headers.append((name, value.strip()))
    return Response(m.group(1), int(m.group(2)), m.group(3), headers, b"")


class SocketOwner:
    """For a client holding a socket in self.sock: close() (errors
    ignored) and use in a with statement."""

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawConn(SocketOwner):
    """A client socket with a read buffer, so pipelined responses can be
    taken one at a time and trailing bytes are never lost."""

    def __init__(self, addr, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure(f"timed out waiting for the server (have {short(self.buf)})")
        self.sock.settimeout(left)
        try:
            return self.sock.recv(65536)
        except socket.timeout:
            raise Failure(f"timed out waiting for the server (have {short(self.buf)})")

    def read_response(self, head_request=False, timeout=IO_TIMEOUT):
        """Reads one full response; the body is framed by Content-Length."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            chunk = self._recv(deadline)
            if not chunk:
                raise Failure(f"connection closed before a full response head "
                              f"(got {short(self.buf)})")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        resp = parse_head(head)
        if head_request or resp.status in (204, 304) or resp.status < 200:
            return resp
        length = resp.header("Content-Length")
        if length is None:   # not expected from eddy, but read to EOF then
            while True:
                chunk = self._recv(deadline)
                if not chunk:
                    break
                self.buf += chunk
            resp.body, self.buf = self.buf, b""
            return resp
        n = int(length)
        while len(self.buf) < n:
            chunk = self._recv(deadline)
            if not chunk:
                raise Failure(f"connection closed after {len(self.buf)} of {n} body bytes")
            self.buf += chunk
        resp.body, self.buf = self.buf[:n], self.buf[n:]
        return resp

    def readable_within(self, seconds):
        """True if bytes (or EOF) arrive within seconds."""
        if self.buf:
            return True
        r, _, _ = select.select([self.sock], [], [], seconds)
        return bool(r)

    def closed_within(self, seconds):
        """True if the server closes (EOF or reset) within seconds with no
        further bytes; fails if it sends anything more."""
        check(not self.buf, f"unexpected extra bytes {short(self.buf)}")
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            raise Failure(f"unexpected extra bytes {short(chunk)}")

    def reset(self):
        """Closes with an RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.close()


def get(path="/", host="t", extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


def raw_request(addr, data, head_request=False, timeout=IO_TIMEOUT):
    """Sends data on a new connection and returns the first response."""
    with RawConn(addr, timeout) as c:
        c.send(data)
        return c.read_response(head_request=head_request, timeout=timeout)


def check_index(resp, what="GET /"):
    check_eq(resp.status, 200, f"{what} status")
    check(resp.body == INDEX_HTML, f"{what} body is not www/index.html: {short(resp.body)}")


def timed_get_index(addr, limit, what="GET /"):
    """GET / on a fresh connection; fails unless it is answered within limit s."""
    t0 = time.monotonic()
    resp = raw_request(addr, get("/"), timeout=max(limit * 4, 2))
    took = time.monotonic() - t0
    check_index(resp, what)
    check(took < limit, f"{what} took {took:.2f} s, want < {limit} s")
    return took


def free_port(host="127.0.0.1"):
    """A TCP port free on host now, for a server that must be told one."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Scratch:
    """A suite's temporary directory: made on first call, returned by
    every call, removed by cleanup() (run.main's cleanup hook)."""

    def __init__(self, prefix):
        self.prefix, self.path = prefix, None

    def __call__(self):
        if self.path is None:
            self.path = Path(tempfile.mkdtemp(prefix=self.prefix))
        return self.path

    def cleanup(self):
        if self.path:
            shutil.rmtree(self.path, ignore_errors=True)


def ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ tests --
# 1. Files: index, HEAD, 404s.

def test_get_index():
    with start_eddy() as srv:
        conn = http.client.HTTPConnection(*srv.addr, timeout=IO_TIMEOUT)
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        check_eq(resp.status, 200, "status")
        check(body == INDEX_HTML, f"body is not www/index.html: {short(body)}")
        ctype = resp.getheader("Content-Type", "")
        check(ctype.split(";")[0].strip() == "text/html", f"Content-Type {ctype!r}")
        check_eq(resp.getheader("Content-Length"), str(len(INDEX_HTML)), "Content-Length")
        server = resp.getheader("Server")
        check(server and "eddy" in server.lower(), f"Server header {server!r}")
        date = resp.getheader("Date")
        check(date and re.match(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$",
                                date), f"Date is not an IMF-fixdate: {date!r}")
        skew = abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time())
        check(skew < 120, f"Date {date!r} is {skew:.0f} s away from now")


def test_head_index():
    with start_eddy() as srv, RawConn(srv.addr) as c:
        c.send(get("/"))
        full = c.read_response()
        c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
        head = c.read_response(head_request=True)
        check_eq(head.status, 200, "HEAD status")
        for name in ("Content-Type", "Content-Length", "Server"):
            check_eq(head.header(name), full.header(name), f"HEAD {name}")
        check(head.header("Date"), "HEAD has no Date")
        # No body may follow: the very next bytes must be the next response.
        check(not c.readable_within(0.3), f"bytes after HEAD response: {short(c.buf)}")
        c.send(get("/"))
        check_index(c.read_response(), "GET / after HEAD")


def test_not_found_page():
    with start_eddy() as srv:
        resp = raw_request(srv.addr, get("/no/such/page.html"))
        check_eq(resp.status, 404, "status")
        check(resp.body == NOT_FOUND_HTML, f"body is not www/404.html: {short(resp.body)}")
        check_eq((resp.header("Content-Type") or "").split(";")[0], "text/html", "Content-Type")
        check_eq(resp.header("Content-Length"), str(len(NOT_FOUND_HTML)), "Content-Length")


def test_builtin_not_found_page():
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "index.html").write_bytes(b"<p>temp root</p>\n")
        with start_eddy(root=tmp) as srv:
            resp = raw_request(srv.addr, get("/"))
            check_eq((resp.status, resp.body), (200, b"<p>temp root</p>\n"), "GET / of temp root")
            resp = raw_request(srv.addr, get("/missing"))
            check_eq(resp.status, 404, "status")
            check_eq((resp.header("Content-Type") or "").split(";")[0], "text/html", "Content-Type")
            check(b"404" in resp.body and resp.body != NOT_FOUND_HTML,
                  f"built-in 404 body {short(resp.body)}")
            check_eq(resp.header("Content-Length"), str(len(resp.body)), "Content-Length")


def test_no_escape_from_root():
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        (root / "index.html").write_bytes(b"inside\n")
        (Path(tmp) / "secret.txt").write_bytes(b"SECRET\n")
        with start_eddy(root=root) as srv:
            for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
                         "/a/../../secret.txt"):
                resp = raw_request(srv.addr, get(path))
                check(b"SECRET" not in resp.body, f"GET {path} leaked a file outside the root")
                check(resp.status in (400, 403, 404), f"GET {path}: status {resp.status}")


def test_post_not_allowed():
    with start_eddy() as srv:
        resp = raw_request(srv.addr, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        check_eq(resp.status, 405, "status")
        check(resp.header("Allow") and "GET" in resp.header("Allow"), f"Allow {resp.header('Allow')!r}")


# 2. Keep-alive and pipelining.

def test_keepalive_http_client():
    with start_eddy() as srv:
        conn = http.client.HTTPConnection(*srv.addr, timeout=IO_TIMEOUT)
        try:
            local = None
            for i, path in enumerate(["/", "/nope", "/", "/index.html", "/"]):
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                check_eq(resp.status, 404 if path == "/nope" else 200, f"request {i} {path}")
                check(body == (NOT_FOUND_HTML if path == "/nope" else INDEX_HTML),
                      f"request {i} body {short(body)}")
                check(resp.getheader("Connection", "").lower() != "close",
                      f"request {i}: server announced Connection: close")
                # http.client silently reconnects; the local port proves it did not.
                port = conn.sock.getsockname()
                local = local or port
                check_eq(port, local, f"request {i} local address (one connection)")
        finally:
            conn.close()


def test_pipelined_requests():
    with start_eddy() as srv, RawConn(srv.addr) as c:
        c.send(get("/") + get("/nope") + get("/"))
        check_index(c.read_response(), "1st pipelined")
        second = c.read_response()
        check_eq(second.status, 404, "2nd pipelined status")
        check(second.body == NOT_FOUND_HTML, "2nd pipelined body")
        check_index(c.read_response(), "3rd pipelined")
        check(not c.readable_within(0.3), f"extra bytes after 3 responses: {short(c.buf)}")


def test_connection_close():
    with start_eddy() as srv, RawConn(srv.addr) as c:
        c.send(get("/", extra="Connection: close\r\n"))
        resp = c.read_response()
        check_index(resp)
        check_eq((resp.header("Connection") or "").lower(), "close", "Connection header")
        check(c.closed_within(3), "no EOF after a Connection: close response")


def test_http10():
    with start_eddy() as srv:
        with RawConn(srv.addr) as c:
            c.send(b"GET / HTTP/1.0\r\n\r\n")
            check_index(c.read_response(), "HTTP/1.0 GET /")
            check(c.closed_within(3), "HTTP/1.0 without keep-alive: no EOF after the response")
        with RawConn(srv.addr) as c:
            c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp = c.read_response()
            check_index(resp, "HTTP/1.0 keep-alive GET /")
            check_eq((resp.header("Connection") or "").lower(), "keep-alive", "Connection header")
            c.send(b"GET /nope HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            check_eq(c.read_response().status, 404, "second HTTP/1.0 keep-alive request")


# 3. Concurrency: the point of the seed.

def test_concurrent_delayed_requests():
    n = 200
    with start_eddy("--delay", "/sleep=1") as srv:
        conns = []
        try:
            t0 = time.monotonic()
            for _ in range(n):
                c = RawConn(srv.addr, timeout=10)
                conns.append(c)
                c.send(get("/sleep"))
            sent = time.monotonic() - t0
            # While all of them wait, / is answered at once.
            timed_get_index(srv.addr, 0.5, "GET / while 200 /sleep wait")
            for i, c in enumerate(conns):
                resp = c.read_response(timeout=10)
                check_index(resp, f"/sleep #{i}")
            took = time.monotonic() - t0
        finally:
            for c in conns:
                c.close()
        check(took >= 0.9, f"200 delayed requests answered after {took:.2f} s: before the 1 s delay")
        check(took <= 3.0, f"200 delayed requests took {took:.2f} s (sending took {sent:.2f} s): "
                           "not concurrent")
        srv.check_alive()


# 4. --max-conns: the rest wait in the backlog, nothing is refused.

def test_max_conns_backlog():
    with start_eddy("--max-conns", "2", "--delay", "/sleep=1") as srv:
        t0 = time.monotonic()
        a = RawConn(srv.addr)
        b = RawConn(srv.addr)
        try:
            a.send(get("/sleep", extra="Connection: close\r\n"))
            b.send(get("/sleep", extra="Connection: close\r\n"))
            time.sleep(0.1)   # let eddy take a and b before c exists
            try:
                c = RawConn(srv.addr)
            except ConnectionRefusedError:
                raise Failure("third connection refused at --max-conns 2; it should wait")
            try:
                c.send(get("/"))
                check(not c.readable_within(0.6),
                      "third connection answered while two /sleep held both slots")
                for name, x in (("a", a), ("b", b)):
                    check_index(x.read_response(timeout=5), f"/sleep on {name}")
                check_index(c.read_response(timeout=5), "GET / on the waiting connection")
                took = time.monotonic() - t0
                check(took <= 3.0, f"waiting connection answered after {took:.2f} s, want <= 3 s")
            finally:
                c.close()
        finally:
            a.close()
            b.close()


# 5. Graceful stop.

def test_sigterm_finishes_in_flight():
    with start_eddy("--delay", "/sleep=1") as srv:
        conns = [RawConn(srv.addr) for _ in range(5)]
        try:
            for c in conns:
                c.send(get("/sleep"))
            # A prompt / proves the loop turned after the sends; the short
            # sleep lets it read the five requests.
            timed_get_index(srv.addr, 0.5)
            time.sleep(0.2)
            srv.signal(signal.SIGTERM)
            # New connections are refused once the signal is handled (loosely:
            # within 0.6 s, while the five are still being delayed).
            refused = False
            deadline = time.monotonic() + 0.6
            while time.monotonic() < deadline and not refused:
                try:
                    socket.create_connection(srv.addr, timeout=1).close()
                    time.sleep(0.05)
                except (ConnectionRefusedError, ConnectionResetError):
                    refused = True
            for i, c in enumerate(conns):
                check_index(c.read_response(timeout=5), f"in-flight /sleep #{i} after SIGTERM")
                check(c.closed_within(3), f"connection #{i} not closed after its response")
            check_eq(srv.wait(5), 0, "exit status after SIGTERM")
            check(refused, "new connections still accepted 0.6 s after SIGTERM")
        finally:
            for c in conns:
                c.close()


def stop_process(srv):
    """SIGSTOPs the server and waits until it is really stopped, so that
    whatever happens next is all pending at once when it resumes."""
    stat = Path(f"/proc/{srv.proc.pid}/stat")
    if not stat.exists():
        raise Skip("no /proc to see the server stopped")
    os.kill(srv.proc.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 2
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
        check(time.monotonic() < deadline, "server did not stop on SIGSTOP")
        time.sleep(0.01)


def sigterm_with_pending_event(make_event):
    """SIGTERM, then another event, both waiting for eddy's next epoll_wait:
    shutdown must not trip over the event of something it just closed, and
    the request in flight must still be answered."""
    with start_eddy("--delay", "/sleep=1") as srv:
        busy = RawConn(srv.addr)
        busy.send(get("/sleep"))
        idle = RawConn(srv.addr)
        idle.send(get("/"))
        check_index(idle.read_response(), "GET / on the keep-alive connection")
        timed_get_index(srv.addr, 0.5)
        time.sleep(0.1)
        stop_process(srv)
        try:
            srv.signal(signal.SIGTERM)
            extra = make_event(srv, idle)
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        try:
            check_index(busy.read_response(timeout=5), "in-flight /sleep after SIGTERM")
            check_eq(srv.wait(5), 0, "exit status after SIGTERM")
        finally:
            for c in (busy, idle, extra):
                if c:
                    c.close()


def new_connection(srv, idle):
    return socket.create_connection(srv.addr, timeout=IO_TIMEOUT)


def request_on_idle_connection(srv, idle):
    idle.send(get("/"))   # answered or closed: both fine, it raced the signal


def test_sigterm_races_new_connection():
    sigterm_with_pending_event(new_connection)


def test_sigterm_races_keepalive_request():
    sigterm_with_pending_event(request_on_idle_connection)


def test_sigint_idle_exit():
    with start_eddy() as srv, RawConn(srv.addr) as c:
        c.send(get("/"))
        check_index(c.read_response())
        srv.signal(signal.SIGINT)
        check(c.closed_within(3), "idle keep-alive connection not closed on SIGINT")
        check_eq(srv.wait(5), 0, "exit status after SIGINT")


# 6. Flags.

def test_help():
    p = run_eddy_to_exit("--help")
    check_eq(p.returncode, 0, "exit status")
    out = p.stdout.decode()
    check("usage" in out.lower(), f"no usage in {short(out)}")
    for flag in ("--listen", "--root", "--max-conns", "--delay", "--help", "--version"):
        check(flag in out, f"--help does not mention {flag}")


def test_version():
    p = run_eddy_to_exit("--version")
    check_eq(p.returncode, 0, "exit status")
    out = p.stdout.decode()
    check(re.fullmatch(r"eddy \d+\.\d+\.\d+\n", out), f"--version printed {short(out)}")


def check_usage_error(p, what, mention=None):
    err = p.stderr.decode(errors="replace")
    check_eq(p.returncode, 2, f"{what}: exit status")
    check(err.strip() and err.count("\n") == 1 and err.endswith("\n"),
          f"{what}: want one stderr line, got {short(err)}")
    check(not p.stdout, f"{what}: unexpected stdout {short(p.stdout)}")
    if mention:
        check(mention.lower() in err.lower(), f"{what}: stderr does not mention {mention!r}: {short(err)}")


BAD_FLAGS = [
    ("unknown_flag", ["--bogus"], "--bogus"),
    ("missing_value", ["--root"], "--root"),
    ("root_missing", ["--root", "/nonexistent/eddy-www"], "/nonexistent/eddy-www"),
    ("max_conns_abc", ["--max-conns", "abc"], "abc"),
    ("max_conns_negative", ["--max-conns", "-1"], "-1"),
    ("delay_nope", ["--delay", "nope"], "nope"),
    ("delay_bad_seconds", ["--delay", "/sleep=soon"], "soon"),
    ("listen_garbage", ["--listen", "nonsense"], "nonsense"),
    ("workers_zero", ["--workers", "0"], "--workers"),
    ("max_body_zero", ["--max-body", "0"], "--max-body"),
    ("header_timeout_zero", ["--header-timeout", "0"], "--header-timeout"),
    ("shutdown_timeout_abc", ["--shutdown-timeout", "abc"], "--shutdown-timeout"),
    ("dotfiles_with_value", ["--dotfiles=yes"], "--dotfiles"),
    ("no_io_uring_with_value", ["--no-io-uring=1"], "--no-io-uring"),
    ("cache_control_two_lines", ["--cache-control", "a\nb"], "--cache-control"),
    ("access_log_unwritable", ["--access-log", "/nonexistent/eddy/access.log"], "access log"),
    ("header_owned_by_eddy", ["--header", "Content-Length: 1"], "--header"),
    ("header_bad_name", ["--header", "Bad Name: x"], "--header"),
    ("header_control_in_value", ["--header", "X-A: a\x01b"], "--header"),
]


def make_bad_flag_test(args, mention):
    def test():
        base = ["--listen", "127.0.0.1:0", "--root", str(WWW)]
        if "--root" in args:
            base = base[:2]
        if "--listen" in args:
            base = base[2:]
        check_usage_error(run_eddy_to_exit(*base, *args), " ".join(args), mention)
    return test


def test_flag_port_in_use():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        p = run_eddy_to_exit("--listen", f"127.0.0.1:{port}", "--root", str(WWW))
        check_usage_error(p, "port in use", "in use")
        check(str(port) in p.stderr.decode(), f"message does not name the port: {short(p.stderr)}")


# 7. IPv6 and several listeners.

def test_ipv6_listen():
    if not ipv6_loopback_available():
        raise Skip("::1 unavailable")
    with start_eddy(listen=("[::1]:0",)) as srv:
        check_eq(srv.addr[0], "::1", "announced host")
        check_index(raw_request(srv.addr, get("/", host="[::1]")), "GET / over ::1")


def io_urings(srv):
    """How many io_uring instances the server process holds."""
    fds = Path(f"/proc/{srv.proc.pid}/fd")
    if not fds.exists():
        raise Skip("no /proc to look at the server's descriptors")
    count = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd) == "anon_inode:[io_uring]"
    return count


def test_io_uring_by_default_epoll_on_request():
    """Each worker drives its sockets through an io_uring of its own where
    the kernel allows it; --no-io-uring leaves them all on epoll."""
    with start_eddy("--workers", "2") as srv:
        timed_get_index(srv.addr, 2)
        rings = io_urings(srv)
        if rings == 0 and "--no-io-uring" not in EDDY_ARGS:
            raise Skip("io_uring unavailable here: eddy runs on epoll")
        check_eq(rings, 0 if "--no-io-uring" in EDDY_ARGS else 2, "io_uring instances")
    with start_eddy("--workers", "2", "--no-io-uring") as srv:
        timed_get_index(srv.addr, 2)
        check_eq(io_urings(srv), 0, "io_uring instances with --no-io-uring")


def test_two_listeners():
    listen = ("127.0.0.1:0", "[::1]:0") if ipv6_loopback_available() else ("127.0.0.1:0", "127.0.0.1:0")
    with start_eddy(listen=listen) as srv:
        check_eq(len(srv.addrs), 2, "ready lines")
        check(srv.addrs[0] != srv.addrs[1], f"both listeners announced {srv.addrs[0]}")
        for addr in srv.addrs:
            check_index(raw_request(addr, get("/")), f"GET / on {addr}")


# 7b. The access log.

ACCESS_LINE_RE = re.compile(
    r'^(?P<addr>\S+) - - \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000)\] '
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"$')


def test_access_log():
    """A line per response in the combined log format, every worker's lines
    in one file, all of them there once eddy has stopped."""
    with tempfile.TemporaryDirectory(prefix="eddy-log-") as tmp:
        path = Path(tmp) / "access.log"
        with start_eddy("--access-log", str(path), "--workers", "2") as srv:
            for i in range(20):
                raw_request(srv.addr, get(f"/?n={i}", extra="User-Agent: t/1\r\nReferer: http://r/\r\n"))
            raw_request(srv.addr, get("/no-such-page"))
            raw_request(srv.addr, b"GET /x HTTP/1.1\r\nHost: t\r\nX: a\x01b\r\n\r\n")
            srv.signal(signal.SIGTERM)
            check_eq(srv.wait(5), 0, "exit status")
        lines = path.read_text().splitlines()
        check_eq(len(lines), 22, f"log lines ({lines[:3]}...)")
        parsed = [ACCESS_LINE_RE.match(line) for line in lines]
        bad = [line for line, m in zip(lines, parsed) if not m]
        check(not bad, f"lines not in the combined format: {bad[:2]}")
        by_request = {m["request"]: m for m in parsed}
        for i in range(20):
            m = by_request.get(f"GET /?n={i} HTTP/1.1")
            check(m is not None, f"no line for request {i}")
            check_eq((m["addr"], m["status"], m["bytes"], m["referer"], m["agent"]),
                     ("127.0.0.1", "200", str(len(INDEX_HTML)), "http://r/", "t/1"), f"line {i}")
        check_eq(by_request["GET /no-such-page HTTP/1.1"]["status"], "404", "404 line")
        check_eq(by_request["GET /x HTTP/1.1"]["status"], "400", "400 line")


def test_access_log_stdout():
    """'-' logs to standard output, after the ready line."""
    with start_eddy("--access-log", "-", "--workers", "1") as srv:
        raw_request(srv.addr, get("/"))
        srv.signal(signal.SIGTERM)
        out, _ = srv.proc.communicate(timeout=5)
        check_eq(srv.proc.returncode, 0, "exit status")
        lines = out.decode().splitlines()
        check(len(lines) == 1 and ACCESS_LINE_RE.match(lines[0]) and '"GET / HTTP/1.1" 200' in lines[0],
              f"stdout after the ready line: {short(out)}")


# 8. The seed example, embedding the library.

def test_seed_example():
    with start_example() as srv:
        check_index(raw_request(srv.addr, get("/")), "GET /")
        resp = raw_request(srv.addr, get("/other"))
        check_eq(resp.status, 404, "/other status")
        check(resp.body == NOT_FOUND_HTML, f"/other body {short(resp.body)}")
        with RawConn(srv.addr, timeout=10) as sleeper:
            t0 = time.monotonic()
            sleeper.send(get("/sleep"))
            time.sleep(0.2)
            for _ in range(3):
                timed_get_index(srv.addr, 0.5, "GET / while /sleep waits")
            resp = sleeper.read_response(timeout=7)
            took = time.monotonic() - t0
        check_index(resp, "/sleep")
        check(4.5 <= took <= 7.0, f"/sleep answered after {took:.2f} s, want about 5 s")


# 8b. The SSE example: one timer, thousands of streams.

class SseConn(RawConn):
    """GET /clock on a connection of its own: the response head, then the
    chunked body de-chunked and cut into events as bytes arrive."""

    def __init__(self, addr, timeout=IO_TIMEOUT):
        super().__init__(addr, timeout)
        self.send(get("/clock"))
        self.head = None      # the Response, once its head is complete
        self.body = b""       # de-chunked bytes not yet cut into events
        self.events = []      # each event's data, as an int
        self.ended = False    # the last chunk came

    def feed(self, data):
        self.buf += data
        if self.head is None:
            if b"\r\n\r\n" not in self.buf:
                return
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.head = parse_head(head)
            check_eq(self.head.header("Transfer-Encoding"), "chunked", "/clock Transfer-Encoding")
        while not self.ended:
            eol = self.buf.find(b"\r\n")
            if eol < 0:
                return
            check(re.fullmatch(rb"[0-9a-fA-F]+", self.buf[:eol]), f"bad chunk size {short(self.buf)}")
            size = int(self.buf[:eol], 16)
            end = eol + 2 + size
            if len(self.buf) < end + 2:
                return
            check_eq(self.buf[end:end + 2], b"\r\n", "bytes after a chunk")
            self.body += self.buf[eol + 2:end]
            self.buf = self.buf[end + 2:]
            self.ended = size == 0
            while b"\n\n" in self.body:
                event, self.body = self.body.split(b"\n\n", 1)
                m = re.fullmatch(rb"data: (\d+)", event)
                check(m, f"unexpected event {short(event)}")
                self.events.append(int(m.group(1)))

    def read_events(self, count, timeout):
        """Reads until count events in all have come; fails after timeout s."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            chunk = self._recv(deadline)
            check(chunk, f"connection closed after {len(self.events)} events")
            self.feed(chunk)

    def read_to_end(self, timeout):
        """Reads until the server closes; the stream must have ended properly."""
        deadline = time.monotonic() + timeout
        while True:
            chunk = self._recv(deadline)
            if not chunk:
                break
            self.feed(chunk)
        check(self.ended, f"closed without the last chunk (have {short(self.buf)})")


def check_clock_events(events, t_start, what):
    """Consecutive seconds (one may be skipped on a busy machine), close to ours."""
    now = time.time()
    for a, b in zip(events, events[1:]):
        check(b - a in (1, 2), f"{what}: events {events} are not a second apart")
    check(t_start - 2 <= events[0] and events[-1] <= now + 2,
          f"{what}: events {events} are not the time now ({now:.0f})")


def sse_rss_kib(srv):
    with open(f"/proc/{srv.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failure("no VmRSS in /proc/PID/status")


def sse_sockets(srv):
    """The server's sockets (its listener and connections): the loop opens
    descriptors of its own (io_uring) only once it runs."""
    fd_dir = f"/proc/{srv.proc.pid}/fd"
    n = 0
    for fd in os.listdir(fd_dir):
        with contextlib.suppress(FileNotFoundError):   # closed meanwhile
            n += os.readlink(f"{fd_dir}/{fd}").startswith("socket:")
    return n


def sanitized(srv):
    """True for a server built with AddressSanitizer, whose memory says
    nothing about eddy's (redzones, quarantine)."""
    with open(f"/proc/{srv.proc.pid}/maps") as f:
        return "asan" in f.read()


def stop_sse(srv, clients):
    """SIGTERM: every stream ends with its last chunk, the server exits 0."""
    srv.signal(signal.SIGTERM)
    for c in clients:
        c.read_to_end(5)
    check_eq(srv.wait(5), 0, "exit status after SIGTERM")


def test_sse_clock_one_client():
    with start_sse_example() as srv:
        resp = raw_request(srv.addr, get("/"))
        check_eq(resp.status, 200, "GET / status")
        check(b"EventSource" in resp.body, f"GET / is not the clock's page: {short(resp.body)}")
        resp = raw_request(srv.addr, b"HEAD /clock HTTP/1.1\r\nHost: t\r\n\r\n", head_request=True)
        check_eq(resp.status, 200, "HEAD /clock status")
        t_start = time.time()
        with SseConn(srv.addr) as c:
            c.read_events(3, 4)   # one at once, then one a second
            check_eq(c.head.status, 200, "/clock status")
            check_eq(c.head.version, "HTTP/1.1", "/clock version")
            check_eq(c.head.header("Content-Type"), "text/event-stream", "/clock Content-Type")
            check_eq(c.head.header("Cache-Control"), "no-cache", "/clock Cache-Control")
            check_clock_events(c.events, t_start, "/clock")
            stop_sse(srv, [c])
        return f"events {c.events}"


def timed_get_index_sse(addr):
    """GET / of the SSE example on a fresh connection, answered within 1 s."""
    t0 = time.monotonic()
    resp = raw_request(addr, get("/"), timeout=4)
    took = time.monotonic() - t0
    check_eq(resp.status, 200, "GET / while streaming")
    check(b"EventSource" in resp.body, f"GET / body {short(resp.body)}")
    check(took < 1.0, f"GET / while streaming took {took:.2f} s, want < 1 s")
    return took


def test_sse_clock_thousands_of_clients():
    n = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 200
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            raise Skip(f"RLIMIT_NOFILE hard limit {hard} is below the {want} descriptors needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    clients = []
    with start_sse_example() as srv:
        try:
            # Warm up what every connection shares (buffers, the stage) first.
            for _ in range(3):
                with SseConn(srv.addr) as c:
                    c.read_events(1, 2)
            time.sleep(0.2)
            rss0 = sse_rss_kib(srv)
            t_start = time.time()
            poller = select.epoll()
            by_fd = {}
            for _ in range(n):
                c = SseConn(srv.addr)
                c.sock.setblocking(False)
                clients.append(c)
                by_fd[c.sock.fileno()] = c
                poller.register(c.sock.fileno(), select.EPOLLIN)

            def read_until(enough, seconds, what):
                deadline = time.monotonic() + seconds
                while True:
                    waiting = [c for c in clients if not enough(c)]
                    if not waiting:
                        return
                    left = deadline - time.monotonic()
                    check(left > 0, f"{len(waiting)} of {n} clients {what} within {seconds} s")
                    for fd, _ in poller.poll(min(left, 0.2)):
                        c = by_fd[fd]
                        chunk = c.sock.recv(65536)
                        check(chunk, f"a client was closed after {len(c.events)} events")
                        c.feed(chunk)

            # Every client gets the time at once, then the ticks go on to all.
            read_until(lambda c: c.events, 5, "got no event")
            rss1 = sse_rss_kib(srv)
            took = timed_get_index_sse(srv.addr)
            read_until(lambda c: len(c.events) >= 3, 5, "got fewer than 3 events")
            for c in clients:
                check_eq(c.head.status, 200, "/clock status")
                check_clock_events(c.events, t_start, "/clock under load")
            per_client = (rss1 - rss0) * 1024 / n
            note = (f"{n} clients, VmRSS +{rss1 - rss0} KiB: {per_client:.0f} B per client; "
                    f"GET / in {took * 1000:.0f} ms")
            if sanitized(srv):
                note += " (sanitizer build: memory not checked)"
            else:
                check(per_client < 4096, f"{per_client:.0f} B per client, want < 4 KiB")
            poller.close()
            for c in clients:
                c.sock.setblocking(True)
            stop_sse(srv, clients)
            return note
        finally:
            for c in clients:
                c.close()


def test_sse_clock_clients_that_leave_are_forgotten():
    with start_sse_example() as srv:
        def cycles(count):
            for _ in range(count):
                with SseConn(srv.addr) as c:
                    c.read_events(1, 2)

        def wait_sockets(limit, seconds=4):
            # A client that left is noticed when the next tick writes to it.
            deadline = time.monotonic() + seconds
            while sse_sockets(srv) > limit:
                check(time.monotonic() < deadline,
                      f"server still holds {sse_sockets(srv) - limit} sockets more "
                      f"{seconds} s after its clients left")
                time.sleep(0.1)

        sockets0 = sse_sockets(srv)
        cycles(200)
        wait_sockets(sockets0)
        rss0 = sse_rss_kib(srv)
        cycles(200)
        wait_sockets(sockets0)
        rss1 = sse_rss_kib(srv)
        with SseConn(srv.addr) as c:
            c.read_events(2, 3)
            if not sanitized(srv):
                check(rss1 - rss0 < 128, f"VmRSS grew {rss1 - rss0} KiB over 200 clients "
                      "that came and left")
            stop_sse(srv, [c])
        return f"VmRSS {rss1 - rss0:+d} KiB over 200 clients that came and left"


def test_sse_clock_curl():
    """curl de-chunks the stream and prints the events as they come."""
    curl = need_curl()
    with start_sse_example() as srv:
        t_start = time.time()
        p = subprocess.run([curl, "-sN", "--max-time", "3.5", srv.url + "clock"],
                           capture_output=True, timeout=10)
        # 28: the time ran out, as it must for a stream that never ends.
        check_eq(p.returncode, 28, f"curl exit status (stderr {short(p.stderr)})")
        events = re.findall(rb"^data: (\d+)$", p.stdout, re.M)
        check(len(events) >= 3, f"{len(events)} events in 3.5 s, want >= 3: {short(p.stdout)}")
        check_clock_events([int(e) for e in events], t_start, "curl /clock")
        return f"{len(events)} events"


# 8c. The upload example: bodies streamed to a handler, in constant memory.

UPLOAD_SIZE = 200 * 1024 * 1024
UPLOAD_RSS_BOUND_KIB = 32 * 1024   # above idle, for a body of UPLOAD_SIZE


def need_curl():
    curl = shutil.which("curl") or ("/usr/bin/curl" if os.access("/usr/bin/curl", os.X_OK) else None)
    if not curl:
        raise Failure("curl is not installed (make test installs it)")
    return curl


def upload_blocks(size=UPLOAD_SIZE, block=1 << 20):
    """size bytes in blocks: one random MiB, rotated differently each time,
    so no block repeats the one before and a lost or doubled one shows."""
    base = os.urandom(block)
    for i in range(size // block):
        k = (i * 4099) % block
        yield base[k:] + base[:k]
    if size % block:
        yield base[:size % block]


def upload_answer(size, crc):
    return f"bytes={size} sum={crc:08x}\n".encode()


def proc_status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise Failure(f"no {field} in /proc/{pid}/status")


class RssWatch:
    """The server's resident memory while something runs: VmRSS sampled
    every 5 ms, and VmHWM after clearing it (where the kernel allows)."""

    def __init__(self, srv):
        self.pid = srv.proc.pid
        self.idle = proc_status_kib(self.pid, "VmRSS")
        self.peak = self.idle
        self.hwm_reset = False
        with contextlib.suppress(OSError):
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")   # the peak starts again from the current size
            self.hwm_reset = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.005):
            with contextlib.suppress(OSError, Failure, ValueError):
                self.peak = max(self.peak, proc_status_kib(self.pid, "VmRSS"))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        if self.hwm_reset:
            with contextlib.suppress(OSError, Failure):
                self.peak = max(self.peak, proc_status_kib(self.pid, "VmHWM"))

    def check(self, srv, what):
        """Fails if the peak went UPLOAD_RSS_BOUND_KIB above idle; returns a note."""
        grew = self.peak - self.idle
        note = (f"{what}: VmRSS idle {self.idle} KiB, peak {self.peak} KiB (+{grew} KiB"
                f"{', VmHWM' if self.hwm_reset else ', sampled'})")
        if sanitized(srv):
            return note + " (sanitizer build: memory not checked)"
        check(grew < UPLOAD_RSS_BOUND_KIB,
              f"{note}: grew {grew} KiB for a {UPLOAD_SIZE >> 20} MiB body, want < "
              f"{UPLOAD_RSS_BOUND_KIB} KiB")
        return note


@contextlib.contextmanager
def upload_file(size=UPLOAD_SIZE):
    """A temporary file of size bytes; yields (path, its CRC-32)."""
    with tempfile.TemporaryDirectory(prefix="eddy-upload-") as tmp:
        path = Path(tmp) / "body.bin"
        crc = 0
        with open(path, "wb") as f:
            for block in upload_blocks(size):
                crc = zlib.crc32(block, crc)
                f.write(block)
        yield path, crc


def warm_up_sink(srv):
    """A small upload and GET /, so idle memory counts what every upload
    shares (buffers touched once)."""
    resp = raw_request(srv.addr, b"PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n"
                       + b"w" * 70000)
    check_eq(resp.body, upload_answer(70000, zlib.crc32(b"w" * 70000)), "warm-up upload")
    resp = raw_request(srv.addr, get("/"))
    check_eq(resp.status, 200, "GET / status")
    check(b"/upload" in resp.body, f"GET / body {short(resp.body)}")


def curl_upload_file(args, what):
    curl = need_curl()
    with upload_file() as (path, crc), start_upload_example() as srv:
        warm_up_sink(srv)
        with RssWatch(srv) as rss:
            p = subprocess.run([curl, "-sS", "-v", "--http1.1", "--max-time", "18",
                                *[a.replace("FILE", str(path)) for a in args], srv.url + "upload"],
                               capture_output=True, timeout=20)
        check_eq(p.returncode, 0, f"curl exit status ({short(p.stderr[-300:], 300)})")
        check_eq(p.stdout, upload_answer(UPLOAD_SIZE, crc), f"{what} answer")
        # A large body: curl asks first, and the server says go on once its
        # handler reads.
        check(b"> Expect: 100-continue" in p.stderr, f"{what}: curl sent no Expect: 100-continue")
        check(b"< HTTP/1.1 100 Continue" in p.stderr, f"{what}: no 100 Continue before the body")
        check(b"> Content-Length: %d" % UPLOAD_SIZE in p.stderr, f"{what}: no Content-Length")
        return rss.check(srv, what)


def test_upload_sink_curl_put_200mib():
    return curl_upload_file(["-T", "FILE"], "curl -T (PUT)")


def test_upload_sink_curl_post_200mib():
    return curl_upload_file(["--data-binary", "@FILE", "-H", "Content-Type: application/octet-stream"],
                            "curl --data-binary (POST)")


def test_upload_sink_curl_chunked_from_pipe():
    """curl -T - reads a pipe of unknown length: a chunked PUT."""
    curl = need_curl()
    with start_upload_example() as srv:
        warm_up_sink(srv)
        with RssWatch(srv) as rss:
            p = subprocess.Popen([curl, "-sS", "-v", "--http1.1", "--max-time", "18", "-T", "-",
                                  srv.url + "upload"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 preexec_fn=_die_with_runner)
            _PROCS.append(p)
            # Read curl's output meanwhile, so it never blocks on a full pipe.
            out = {}
            reader = threading.Thread(target=lambda: out.update(zip(("stdout", "stderr"),
                                                                    (p.stdout.read(), p.stderr.read()))),
                                      daemon=True)
            reader.start()
            crc = 0
            try:
                for block in upload_blocks():
                    crc = zlib.crc32(block, crc)
                    p.stdin.write(block)
            except BrokenPipeError:
                pass   # curl stopped early: its status says why
            p.stdin.close()
            check_eq(p.wait(timeout=20), 0, "curl exit status")
            reader.join(5)
        err = out.get("stderr", b"")
        check(b"> Transfer-Encoding: chunked" in err, f"curl -T - did not send chunked: {short(err)}")
        check_eq(out.get("stdout"), upload_answer(UPLOAD_SIZE, crc), "chunked upload answer")
        return rss.check(srv, "curl -T - (chunked PUT)")


class H11Client(SocketOwner):
    """A strict HTTP/1.1 client (h11) over a raw socket, each send its own
    segment (TCP_NODELAY), so pieces reach the server as sent."""

    def __init__(self, addr):
        import h11
        self.h11 = h11
        self.sock = socket.create_connection(addr, timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = h11.Connection(our_role=h11.CLIENT)
        self.informational = []   # statuses of 1xx responses received
        self.pending = None       # an event informational_within() took

    def request(self, method, target, headers):
        self.sock.sendall(self.conn.send(self.h11.Request(
            method=method, target=target, headers=[("Host", "t"), *headers])))

    def data(self, piece):
        self.sock.sendall(self.conn.send(self.h11.Data(data=piece)))

    def end(self):
        self.sock.sendall(self.conn.send(self.h11.EndOfMessage()))

    def next_event(self):
        """The next event that is not a 1xx response (those are noted)."""
        if self.pending is not None:
            event, self.pending = self.pending, None
            return event
        while True:
            event = self.conn.next_event()
            if event is self.h11.NEED_DATA:
                chunk = self.sock.recv(65536)
                check(chunk, "server closed the connection before a whole response")
                self.conn.receive_data(chunk)
            elif isinstance(event, self.h11.InformationalResponse):
                self.informational.append(event.status_code)
            else:
                return event

    def response(self):
        """The next response and its body."""
        resp = self.next_event()
        check(isinstance(resp, self.h11.Response), f"want a response, got {resp!r}")
        body = b""
        while True:
            event = self.next_event()
            if isinstance(event, self.h11.EndOfMessage):
                return resp, body
            body += event.data

    def informational_within(self, seconds):
        """Waits up to seconds for a 1xx; True if one came.  Anything else
        that comes is kept for next_event."""
        deadline = time.monotonic() + seconds
        while True:
            event = self.conn.next_event()
            if event is self.h11.NEED_DATA:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                    return False
                chunk = self.sock.recv(65536)
                check(chunk, "server closed the connection before a whole response")
                self.conn.receive_data(chunk)
            elif isinstance(event, self.h11.InformationalResponse):
                self.informational.append(event.status_code)
                return True
            else:
                self.pending = event
                return False

    def closed_within(self, seconds):
        """True if the server closes within seconds, sending nothing more."""
        self.sock.settimeout(seconds)
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def need_h11():
    try:
        import h11
    except ImportError:
        raise Failure("python3-h11 is not installed (make test installs it)")
    return h11


def test_upload_sink_h11_chunked_and_split():
    need_h11()
    import random
    rng = random.Random(7)
    with start_upload_example() as srv:
        # Chunked, in 3000 small chunks of 1 to 300 bytes, each sent alone.
        chunks = [os.urandom(rng.randint(1, 300)) for _ in range(3000)]
        data = b"".join(chunks)
        with H11Client(srv.addr) as c:
            c.request("PUT", "/upload", [("Transfer-Encoding", "chunked")])
            for chunk in chunks:
                c.data(chunk)
            c.end()
            resp, body = c.response()
            check_eq(resp.status_code, 200, "chunked upload status")
            check_eq(body, upload_answer(len(data), zlib.crc32(data)), "chunked upload answer")
            # The connection goes on: a streamed body read to its end
            # leaves it reusable.
            c.conn.start_next_cycle()
            c.request("GET", "/", [])
            c.end()
            resp, body = c.response()
            check_eq(resp.status_code, 200, "GET / after the chunked upload, same connection")
        # With a Content-Length, in pieces cut at odd places (a byte, a few,
        # across 64 KiB), with pauses so they arrive apart; POST this time.
        data = os.urandom(1_000_003)
        cuts = [0, 1, 2, 9, 4096 + 5, 65536 + 3, 65536 * 2 + 7, 500_001, 999_999, len(data)]
        with H11Client(srv.addr) as c:
            c.request("POST", "/upload", [("Content-Length", str(len(data)))])
            for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
                if i:
                    time.sleep(0.02)
                c.data(data[a:b])
            c.end()
            resp, body = c.response()
            check_eq(resp.status_code, 200, "Content-Length upload status")
            check_eq(body, upload_answer(len(data), zlib.crc32(data)), "Content-Length upload answer")
        return f"{len(chunks)} chunks; {len(data)} bytes in {len(cuts) - 1} pieces"


def test_upload_sink_expect_100_continue():
    """100 Continue comes once the handler reads; a Content-Length beyond
    --max is answered 413 at once, with no 100, and the connection closes."""
    need_h11()
    curl = need_curl()
    data = os.urandom(100_000)
    with start_upload_example("--max", "50000") as srv:
        # Within the limit: 100 before the body is sent, then the answer.
        with H11Client(srv.addr) as c:
            c.request("PUT", "/upload", [("Content-Length", "40000"), ("Expect", "100-continue")])
            check(c.informational_within(3), "no 100 Continue within 3 s")
            c.data(data[:40000])
            c.end()
            resp, body = c.response()
            check_eq(c.informational, [100], "informational responses")
            check_eq((resp.status_code, body), (200, upload_answer(40000, zlib.crc32(data[:40000]))),
                     "answer within --max")
        # Beyond it: 413 without a 100, and the server closes; the client
        # has sent none of the body.
        with H11Client(srv.addr) as c:
            c.request("PUT", "/upload", [("Content-Length", str(len(data))), ("Expect", "100-continue")])
            resp, body = c.response()
            check_eq(c.informational, [], "informational responses before a 413")
            check_eq((resp.status_code, body), (413, b"too large\n"), "answer beyond --max")
            check(any(k == b"connection" and v == b"close" for k, v in resp.headers),
                  "413 without Connection: close")
            check(c.closed_within(3), "connection not closed after the 413")
        # A chunked body that grows beyond --max: 413 once it crosses.
        with H11Client(srv.addr) as c:
            c.request("PUT", "/upload", [("Transfer-Encoding", "chunked")])
            for i in range(0, 60000, 1000):
                c.data(data[i:i + 1000])
            resp, body = c.response()
            check_eq((resp.status_code, body), (413, b"too large\n"), "chunked body beyond --max")
            check(c.closed_within(3), "connection not closed after the 413")
        # curl asks with Expect: 100-continue for a large body by itself,
        # and takes a 413 instead of a 100 as the end.
        with upload_file(2 * 1024 * 1024) as (path, crc):
            p = subprocess.run([curl, "-sS", "-v", "--http1.1", "-T", str(path), srv.url + "upload"],
                               capture_output=True, timeout=10)
        check_eq(p.returncode, 0, f"curl exit status ({short(p.stderr[-300:], 300)})")
        check(b"> Expect: 100-continue" in p.stderr, "curl sent no Expect: 100-continue")
        check(b"< HTTP/1.1 100 Continue" not in p.stderr, "100 Continue for a body beyond --max")
        check(b"< HTTP/1.1 413 " in p.stderr, f"curl did not get 413: {short(p.stderr[-300:], 300)}")
        check_eq(p.stdout, b"too large\n", "curl's 413 body")


def test_upload_sink_stops_on_sigterm():
    """SIGTERM lets an upload in flight finish, then the sink exits 0."""
    with start_upload_example() as srv, RawConn(srv.addr) as c:
        data = os.urandom(300_000)
        c.send(b"PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(data)
               + data[:1000])
        time.sleep(0.2)
        srv.signal(signal.SIGTERM)
        time.sleep(0.2)
        c.send(data[1000:])
        resp = c.read_response()
        check_eq((resp.status, resp.body), (200, upload_answer(len(data), zlib.crc32(data))),
                 "upload in flight at SIGTERM")
        check_eq(srv.wait(5), 0, "exit status after SIGTERM")


# 9. curl.

def test_curl():
    curl = shutil.which("curl") or ("/usr/bin/curl" if os.access("/usr/bin/curl", os.X_OK) else None)
    if not curl:
        raise Skip("curl not found")
    with start_eddy() as srv:
        p = subprocess.run([curl, "-sS", "-i", "--max-time", "5", srv.url],
                           capture_output=True, timeout=10)
        check_eq(p.returncode, 0, f"curl exit status (stderr {short(p.stderr)})")
        out = p.stdout
        check(re.match(rb"^HTTP/1\.1 200 ", out), f"curl output starts {short(out)}")
        check(out.endswith(b"\r\n\r\n" + INDEX_HTML), f"curl body is not index.html: {short(out[-80:])}")


def test_curl_response_fields_flag():
    """--header puts its fields on every response: a file, a 404, a 304, a 405."""
    curl = need_curl()
    fields = [("X-Frame-Options", "DENY"), ("Strict-Transport-Security", "max-age=60")]
    args = [a for name, value in fields for a in ("--header", f"{name}: {value}")]
    with start_eddy(*args) as srv:
        def head(what, *curl_args, path=""):
            p = subprocess.run([curl, "-sS", "--http1.1", "--max-time", "5", *curl_args,
                                srv.url + path], capture_output=True, timeout=10)
            check_eq(p.returncode, 0, f"{what}: curl exit status ({short(p.stderr)})")
            resp = parse_head(p.stdout.split(b"\r\n\r\n", 1)[0])   # the head curl printed
            for name, value in fields:
                check_eq(resp.header(name), value, f"{what}: {name}")
            return resp

        resp = head("file", "-I")
        check_eq(resp.status, 200, "file status")
        etag = resp.header("ETag")
        check(etag, "no ETag on the file")
        check_eq(head("404", "-I", path="no/such/file").status, 404, "404 status")
        check_eq(head("304", "-I", "-H", f"If-None-Match: {etag}").status, 304, "304 status")
        check_eq(head("405", "-o", "/dev/null", "-D", "-", "-X", "DELETE").status, 405, "405 status")


# 10. Clients that leave.

def client_leaves(close):
    with start_eddy("--delay", "/sleep=1") as srv:
        for _ in range(3):
            c = RawConn(srv.addr)
            c.send(get("/sleep"))
            time.sleep(0.1)
            close(c)
        time.sleep(1.4)   # past the delay: the timers have fired or been cancelled
        srv.check_alive()
        timed_get_index(srv.addr, 1.0, "GET / after clients left")
        srv.check_alive()


def test_client_closes_before_delayed_answer():
    client_leaves(RawConn.close)


def test_client_resets_before_delayed_answer():
    client_leaves(RawConn.reset)


def test_reset_noticed_while_pipelined_input_waits():
    # A second request sent while /sleep is held waits unread until /sleep
    # is answered; a reset must still end the connection at once and free
    # its --max-conns slot for the next client.
    with start_eddy("--max-conns", "1", "--delay", "/sleep=5") as srv:
        c = RawConn(srv.addr)
        c.send(get("/sleep"))
        time.sleep(0.3)
        c.send(get("/"))
        time.sleep(0.3)
        c.reset()
        timed_get_index(srv.addr, 2.0, "GET / after the pipelining client reset")
        srv.check_alive()


def test_half_closed_client_still_answered():
    with start_eddy("--delay", "/sleep=0.5") as srv, RawConn(srv.addr) as c:
        c.send(get("/sleep"))
        c.sock.shutdown(socket.SHUT_WR)   # done sending, still listening
        check_index(c.read_response(timeout=5), "/sleep after the client's half-close")
        check(c.closed_within(3), "no EOF after answering a half-closed client")


# 11. Bad requests.

def test_garbage_request_400():
    with start_eddy() as srv, RawConn(srv.addr) as c:
        c.send(b"HELLO\r\n\r\n")
        resp = c.read_response()
        check_eq(resp.status, 400, "status")
        check(c.closed_within(3), "connection not closed after 400")
        srv.check_alive()


def test_missing_host_400():
    with start_eddy() as srv, RawConn(srv.addr) as c:
        c.send(b"GET / HTTP/1.1\r\n\r\n")
        check_eq(c.read_response().status, 400, "status")
        check(c.closed_within(3), "connection not closed after 400")


def test_duplicate_host_400():
    with start_eddy() as srv, RawConn(srv.addr) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        check_eq(c.read_response().status, 400, "status")
        check(c.closed_within(3), "connection not closed after 400")


def test_huge_header_431():
    with start_eddy() as srv, RawConn(srv.addr) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        check_eq(c.read_response().status, 431, "status")
        check(c.closed_within(3), "connection not closed after 431")
        srv.check_alive()


def test_large_header_under_limit_ok():
    with start_eddy() as srv, RawConn(srv.addr) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 15000 + b"\r\n\r\n")
        check_index(c.read_response(), "GET / with a 15000-byte header")
        c.send(get("/"))
        check_index(c.read_response(), "next request on the same connection")


def test_shutdown_timeout():
    with start_eddy("--delay", "/sleep=5", "--shutdown-timeout", "0.5") as srv, RawConn(srv.addr) as c:
        c.send(get("/sleep"))
        time.sleep(0.2)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        check_eq(srv.wait(5), 0, "exit status after --shutdown-timeout")
        took = time.monotonic() - t0
        check(took < 2.5, f"exited {took:.2f} s after SIGTERM, want about 0.5 s")
        check(c.closed_within(2), "the cut request's connection was not closed")


# 12. Limits and timeouts set by flags: each crossed, and each just held.

def test_flag_limits():
    with start_eddy("--max-request-line", "100", "--max-header-bytes", "512",
                    "--max-headers", "5", "--max-body", "10") as srv:
        def status(data):
            with RawConn(srv.addr) as c:
                c.send(data)
                return c.read_response().status
        check_eq(status(get("/" + "a" * 200)), 414, "request line over --max-request-line")
        check_eq(status(get("/" + "a" * 60)), 404, "request line under --max-request-line")
        check_eq(status(get("/", extra="X: " + "a" * 600 + "\r\n")), 431,
                 "head over --max-header-bytes")
        check_eq(status(get("/", extra="X: " + "a" * 300 + "\r\n")), 200,
                 "head under --max-header-bytes")
        check_eq(status(get("/", extra="X: a\r\n" * 5)), 431, "fields over --max-headers")
        check_eq(status(get("/", extra="X: a\r\n" * 4)), 200, "fields at --max-headers")
        post = "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{}"
        check_eq(status(post.format(11, "a" * 11).encode()), 413, "body over --max-body")
        check_eq(status(post.format(10, "a" * 10).encode()), 405, "body at --max-body")


def test_header_timeout():
    with start_eddy("--header-timeout", "0.5") as srv, RawConn(srv.addr) as slow:
        slow.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        t0 = time.monotonic()
        closed = False
        for ch in b"X-Slow: abcdefghij":   # one byte every 0.1 s: slowloris
            try:
                slow.send(bytes([ch]))
            except OSError:
                closed = True
                break
            if slow.readable_within(0.1):
                break
        timed_get_index(srv.addr, 0.5, "GET / while a head trickles in")
        check(closed or slow.closed_within(2), "slow head not closed by --header-timeout")
        took = time.monotonic() - t0
        check(0.4 < took < 2.5, f"slow head closed after {took:.2f} s, want about 0.5 s")


def test_keepalive_timeout():
    with start_eddy("--keepalive-timeout", "0.5") as srv, RawConn(srv.addr) as c:
        c.send(get("/"))
        check_index(c.read_response())
        t0 = time.monotonic()
        check(not c.readable_within(0.3), "idle connection closed before --keepalive-timeout")
        check(c.closed_within(2), "idle connection not closed by --keepalive-timeout")
        took = time.monotonic() - t0
        check(took < 2, f"closed after {took:.2f} s idle, want about 0.5 s")


def test_send_timeout():
    root = Path(tempfile.mkdtemp(prefix="eddy-send-"))
    try:
        (root / "index.html").write_bytes(INDEX_HTML)
        with open(root / "big.bin", "wb") as f:
            f.truncate(64 * 1024 * 1024)   # sparse: costs no disk
        with start_eddy("--send-timeout", "0.5", root=root) as srv:
            c = RawConn(srv.addr)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.send(get("/big.bin"))
            time.sleep(2)   # never read: the server's writes stall
            timed_get_index(srv.addr, 0.5, "GET / while a client stops reading")
            got = 0
            c.sock.settimeout(3)
            try:
                while True:
                    chunk = c.sock.recv(1 << 20)
                    if not chunk:
                        break
                    got += len(chunk)
            except (ConnectionResetError, socket.timeout):
                pass
            c.close()
            check(got < 64 * 1024 * 1024, "stalled client got the whole file: no --send-timeout")
            srv.check_alive()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# 13. Strict real clients: h11 (a strict HTTP/1.1 state machine) and curl.

def test_h11_client():
    try:
        import h11
    except ImportError:
        raise Failure("python3-h11 is not installed (make test installs it)")
    with start_eddy() as srv, RawConn(srv.addr) as c:
        conn = h11.Connection(our_role=h11.CLIENT)

        def exchange(method, target, body=b""):
            headers = [("Host", "t")]
            if body:
                headers.append(("Content-Length", str(len(body))))
            data = conn.send(h11.Request(method=method, target=target, headers=headers))
            if body:
                data += conn.send(h11.Data(data=body))
            data += conn.send(h11.EndOfMessage())
            c.send(data)
            resp, content = None, b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    chunk = c.sock.recv(65536)
                    check(chunk, "server closed during an h11 exchange")
                    conn.receive_data(chunk)
                elif isinstance(event, h11.Response):
                    resp = event
                elif isinstance(event, h11.Data):
                    content += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            conn.start_next_cycle()   # h11 insists the connection is reusable
            return resp, content

        resp, body = exchange("GET", "/")
        check_eq(resp.status_code, 200, "h11 GET / status")
        check(body == INDEX_HTML, "h11 GET / body")
        names = {k.lower() for k, _ in resp.headers}
        for name in (b"date", b"server", b"content-length", b"content-type"):
            check(name in names, f"h11 response lacks {name.decode()}")
        resp, body = exchange("HEAD", "/")
        check_eq((resp.status_code, body), (200, b""), "h11 HEAD /")
        resp, body = exchange("GET", "/nope")
        check_eq(resp.status_code, 404, "h11 GET /nope status")
        resp, body = exchange("POST", "/", b"some form data")
        check_eq(resp.status_code, 405, "h11 POST / status")
        check(any(k.lower() == b"allow" for k, _ in resp.headers), "405 without Allow")
        resp, body = exchange("OPTIONS", "*")
        check_eq(resp.status_code, 204, "h11 OPTIONS * status")


def test_curl_strict():
    curl = shutil.which("curl") or ("/usr/bin/curl" if os.access("/usr/bin/curl", os.X_OK) else None)
    if not curl:
        raise Failure("curl is not installed (make test installs it)")
    with start_eddy() as srv:
        # Two URLs in one run: curl reuses the kept-alive connection.
        p = subprocess.run([curl, "-sS", "-v", "--http1.1", "-o", "/dev/null", "-o", "/dev/null",
                            srv.url, srv.url + "index.html"], capture_output=True, timeout=10)
        check_eq(p.returncode, 0, f"curl exit status ({short(p.stderr)})")
        check(b"Re-using existing connection" in p.stderr or b"Reusing existing connection" in p.stderr,
              "curl did not reuse the keep-alive connection")
        p = subprocess.run([curl, "-sS", "-f", "-o", "/dev/null", srv.url + "nope"],
                           capture_output=True, timeout=10)
        check_eq(p.returncode, 22, "curl -f on a 404 (exit 22)")
        # A body over 1 KiB makes curl send Expect: 100-continue.
        p = subprocess.run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--http1.1",
                            "--data-binary", "x" * 4096, "-H", "Expect: 100-continue", srv.url],
                           capture_output=True, timeout=10)
        check_eq(p.stdout, b"405", f"curl POST with Expect: 100-continue ({short(p.stderr)})")
        p = subprocess.run([curl, "-sS", "-I", srv.url], capture_output=True, timeout=10)
        check(re.match(rb"^HTTP/1\.1 200 ", p.stdout), f"curl -I: {short(p.stdout)}")


# ----------------------------------------------------------------- runner --

def all_tests():
    tests = [(name[len("test_"):], fn) for name, fn in globals().items()
             if name.startswith("test_") and callable(fn)]
    for name, args, mention in BAD_FLAGS:
        tests.append((f"flag_{name}", make_bad_flag_test(args, mention)))
    # Keep the order of the file (flags grouped with their section).
    order = ["get_index", "head_index", "not_found_page", "builtin_not_found_page",
             "no_escape_from_root", "post_not_allowed",
             "keepalive_http_client", "pipelined_requests", "connection_close", "http10",
             "concurrent_delayed_requests", "max_conns_backlog",
             "sigterm_finishes_in_flight", "sigterm_races_new_connection",
             "sigterm_races_keepalive_request", "sigint_idle_exit", "help", "version"]
    order += [f"flag_{n}" for n, _, _ in BAD_FLAGS]
    order += ["flag_port_in_use"]
    rank = {n: i for i, n in enumerate(order)}
    return sorted(tests, key=lambda t: rank.get(t[0], len(order)))


def on_alarm(signum, frame):
    raise TestTimeout(f"test took longer than {TEST_TIMEOUT} s")


def on_terminate(signum, frame):
    # Turn SIGTERM/SIGHUP into an exception so every finally runs and the
    # servers are killed, as with Ctrl-C.
    raise KeyboardInterrupt(signal.Signals(signum).name)


FAILURES = []   # each failed test's line, repeated above the summary


def run_one(name, fn):
    t0 = time.monotonic()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        note = fn()   # a test may return a short note for its line
        verdict, reason = "ok", note if isinstance(note, str) else ""
    except Skip as e:
        verdict, reason = "SKIP", str(e)
    except (Failure, TestTimeout) as e:
        verdict, reason = "FAIL", str(e)
    except Exception as e:   # an error in the test or an unexpected socket error
        tb = traceback.extract_tb(e.__traceback__)[-1]
        verdict, reason = "FAIL", f"{type(e).__name__}: {e} (line {tb.lineno})"
    finally:
        signal.alarm(0)
        reap_all()
    took = time.monotonic() - t0
    line = f"{name:<45} {verdict} ({took:.2f} s){'  ' + reason if reason else ''}"
    print(line, flush=True)
    if verdict == "FAIL":
        FAILURES.append(line)
    return verdict


def main(tests=None, doc=None, need_example=True, timeouts=None, cleanup=None):
    """Runs tests ([(name, fn)]; this file's by default) as the command line
    says.  Other suites (files.py, h2.py) pass their own tests and
    docstring; with need_example false, --example is accepted and ignored.
    timeouts: {name: seconds} for tests that may take longer than
    TEST_TIMEOUT; cleanup: called once at the end."""
    global EDDY, EXAMPLE, SSE_EXAMPLE, UPLOAD_EXAMPLE, EDDY_ARGS
    ap = argparse.ArgumentParser(description=(doc or __doc__).split("\n\n")[0])
    ap.add_argument("--eddy", required=True, help="path of the eddy program")
    ap.add_argument("--example", required=need_example, help="path of examples/seed_server")
    ap.add_argument("--example-sse", help="path of examples/sse_clock "
                    "(default: sse_clock beside --example)")
    ap.add_argument("--example-upload", help="path of examples/upload_sink "
                    "(default: upload_sink beside --example)")
    ap.add_argument("-k", dest="only", help="run only tests whose name contains this")
    ap.add_argument("--skip", action="append", default=[],
                    help="leave out tests whose name contains this (repeatable)")
    ap.add_argument("--eddy-arg", dest="eddy_args", action="append", default=[],
                    help="a flag for every eddy the tests serve with (repeatable)")
    opts = ap.parse_args()
    EDDY = str(Path(opts.eddy).resolve())
    EDDY_ARGS = opts.eddy_args
    EXAMPLE = str(Path(opts.example).resolve()) if opts.example else None
    if opts.example_sse or EXAMPLE:
        SSE_EXAMPLE = str(Path(opts.example_sse or Path(EXAMPLE).parent / "sse_clock").resolve())
    if opts.example_upload or EXAMPLE:
        UPLOAD_EXAMPLE = str(Path(opts.example_upload or
                                  Path(EXAMPLE).parent / "upload_sink").resolve())
    for path in (EDDY, EXAMPLE, SSE_EXAMPLE, UPLOAD_EXAMPLE) if need_example else (EDDY,):
        if not os.access(path, os.X_OK):
            print(f"{path}: not an executable (run make all)", file=sys.stderr)
            print("0 passed, 1 failed, 0 skipped")
            return 1

    signal.signal(signal.SIGTERM, on_terminate)
    signal.signal(signal.SIGHUP, on_terminate)
    passed = failed = skipped = 0
    default_timeout = TEST_TIMEOUT
    try:
        for name, fn in all_tests() if tests is None else tests:
            if opts.only and opts.only not in name:
                continue
            if any(k in name for k in opts.skip):
                continue
            globals()["TEST_TIMEOUT"] = (timeouts or {}).get(name, default_timeout)
            verdict = run_one(name, fn)
            if verdict == "ok":
                passed += 1
            elif verdict == "SKIP":
                skipped += 1
            else:
                failed += 1
    except KeyboardInterrupt:
        failed += 1
        print("interrupted", flush=True)
    finally:
        reap_all()
        if cleanup:
            cleanup()
    return summary(passed, failed, skipped)


def summary(passed, failed, skipped):
    """The closing lines; returns the exit status."""
    if FAILURES:   # again at the end, where a log's tail shows them
        print("failed:", *FAILURES, sep="\n  ", flush=True)
    print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
