#!/usr/bin/env python3
"""Integration tests for eddy's reverse proxy (--proxy, and a path's
`proxy:` in the configuration file): requests rebuilt field by field,
hop-by-hop fields removed, X-Forwarded-* and Forwarded, Host and
strip-prefix, bodies byte-exact both ways in every framing, strict checks
of the backend's response (502), failures and timeouts (502, 503, 504),
retries, keep-alive reuse, backpressure and memory, smuggling, 1,000
requests at once, HTTP/2 and TLS clients, unix and IPv6 backends,
balancing and health checks, WebSocket tunnels.

    python3 tests/integration/proxy.py --eddy build/eddy
    python3 tests/integration/proxy.py --eddy build/eddy -k forwarded
    python3 tests/integration/proxy.py --eddy build/eddy --skip concurrent --eddy-arg=--no-io-uring

Same harness, command line, output and exit status as run.py.  The
backends are tests/integration/backend.py: raw-socket HTTP/1.1 servers
that record every request byte by byte and answer as each test scripts.
Beyond the standard library: curl (HTTP/2 and TLS clients), openssl (a
self-signed certificate) and python3-websockets (the WebSocket client and
backend); scripts/deps.sh test installs them.  Every eddy runs one worker
(the proxy's connections and health state are per worker) and is stopped
with SIGTERM at the end of a test that passed: it must exit 0 with no
sanitizer report.
"""

import asyncio
import contextlib
import email.utils
import hashlib
import json
import random
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (run.EDDY is set by run.main)
from run import Failure, Skip, SocketOwner, check, check_eq, short  # noqa: E402
from backend import Backend, Closed, HasFields, response, chunk_body, refused_port  # noqa: E402

try:
    import websockets
    import websockets.exceptions
except ImportError:   # the WebSocket tests say SKIP
    websockets = None

MiB = 1024 * 1024
IO_TIMEOUT = 10
MAX_BODY = 256 * MiB         # eddy's max-body in every test: bodies of several MiB pass
LISTEN_RE = re.compile(r"^eddy listening on (https?)://(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)/$")
SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
              "upgrade", "trailer", "expect"}
# Fields eddy adds or owns on the way to the backend: left out when the
# client's other fields are compared in order.
PROXY_OWNED = {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
               "via", "connection", "content-length", "transfer-encoding"}
scratch = run.Scratch("eddy-proxy-")
cleanup = scratch.cleanup


def sanitized():
    with open(run.EDDY, "rb") as f:
        return b"__asan_init" in f.read()


def need_ipv6():
    if not run.ipv6_loopback_available():
        raise Skip("no IPv6 loopback (::1) here")


def need_websockets():
    if websockets is None:
        raise Skip("python3-websockets is not installed (scripts/deps.sh test installs it)")


def rand_bytes(n, seed):
    """n random-looking bytes, the same for the same seed (fast: one
    random MiB, rotated differently for each MiB)."""
    rnd = random.Random(seed)
    block = rnd.randbytes(min(n, MiB))
    out = bytearray()
    i = 0
    while len(out) < n:
        k = (i * 7919) % len(block)
        out += block[k:] + block[:k]
        i += 1
    return bytes(out[:n])


def sha(data):
    return hashlib.sha256(data).hexdigest()[:16]


# ------------------------------------------------------------------ eddy --


class Eddy:
    def __init__(self, srv):
        self.srv = srv
        self.plain, self.tls = [], []

    @property
    def addr(self):
        return (self.plain or self.tls)[0]

    @property
    def pid(self):
        return self.srv.proc.pid

    def url(self, path="/", tls=False):
        host, port = (self.tls if tls else self.plain)[0]
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if tls else 'http'}://{host}:{port}{path}"

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise Failure("no VmRSS in /proc/PID/status")

    def stop(self, timeout=10):
        """SIGTERM; eddy must exit 0 within timeout with no sanitizer
        report.  Returns the seconds it took."""
        t0 = time.monotonic()
        self.srv.signal(signal.SIGTERM)
        code = self.srv.wait(timeout)
        took = time.monotonic() - t0
        err = self.srv.stderr_text()
        check(not SANITIZER_RE.search(err), f"sanitizer report on stderr: {short(err, 800)}")
        check_eq(code, 0, f"exit status after SIGTERM (stderr: {short(err, 300)})")
        return took


_CERT = None


def make_cert():
    """A self-signed certificate for localhost and 127.0.0.1, once per run."""
    global _CERT
    if _CERT:
        return _CERT
    openssl = shutil.which("openssl")
    if not openssl:
        raise Failure("openssl is not installed (scripts/deps.sh test installs it)")
    cert, key = scratch() / "localhost.crt", scratch() / "localhost.key"
    p = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                        "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"], capture_output=True, timeout=30)
    check_eq(p.returncode, 0, f"openssl: {short(p.stderr, 200)}")
    _CERT = (cert, key)
    return _CERT


@contextlib.contextmanager
def start(proxies=(), conf=None, args=(), listen=("127.0.0.1:0",), tls_listen=(),
          shutdown=1, stop=True, listeners=None):
    """Runs eddy.  With proxies ([(path, [url, ...])]) by flags: one
    worker, a max-body of MAX_BODY, the given --listen and --listen-tls
    addresses; with conf (the text of a configuration file), by -c alone.
    Waits for `listeners` ready lines (default: one per address given).
    When the test's body passed, eddy is stopped (see Eddy.stop)."""
    argv = [run.EDDY]
    if conf is not None:
        path = scratch() / f"conf-{time.monotonic_ns()}.yaml"
        path.write_text(conf)
        argv += ["-c", str(path)]
        want = listeners or 1
    else:
        for a in listen:
            argv += ["--listen", a]
        for a in tls_listen:
            argv += ["--listen-tls", a]
        if tls_listen:
            cert, key = make_cert()
            argv += ["--cert", str(cert), "--key", str(key)]
        argv += ["--root", str(run.WWW), "--workers", "1", "--max-body", str(MAX_BODY),
                 "--shutdown-timeout", str(shutdown)]
        for p, urls in proxies:
            argv += ["--proxy", f"{p}={','.join(urls)}"]
        want = listeners or len(listen) + len(tls_listen)
    argv += [*args, *run.EDDY_ARGS]
    with run.spawn_server(argv, 0) as srv:
        e = Eddy(srv)
        n = [0]

        def take(line):
            m = LISTEN_RE.match(line)
            if m:
                (e.tls if m.group(1) == "https" else e.plain).append(
                    (m.group(2).strip("[]"), int(m.group(3))))
                n[0] += 1
            return n[0] >= want

        run.read_stdout_lines(srv.proc, srv.errfile, take)
        yield e
        if stop and not srv.expect_exit:
            srv.check_alive()
            e.stop()


def yaml_value(v):
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(v)   # a double-quoted YAML string


def proxy_block(to, indent=8, **opts):
    """The `proxy:` mapping of a path (keys with _ written with -)."""
    pad = " " * indent
    lines = [f"{pad}proxy:", f"{pad}  to: {yaml_value(list(to))}"]
    for k, v in opts.items():
        lines.append(f"{pad}  {k.replace('_', '-')}: {yaml_value(v)}")
    return "\n".join(lines) + "\n"


def conf_for(to, path="/", listen=("127.0.0.1:0",), extra_paths="", **opts):
    """A configuration file's text: one default site proxying path to the
    backends `to` with opts, then extra_paths (text of more path items)."""
    return (f"listen: {yaml_value(list(listen))}\nworkers: 1\nmax-body: {MAX_BODY}\n"
            f"shutdown-timeout: 1\nsites:\n  - default: true\n    paths:\n"
            f"      - path: {path}\n" + proxy_block(to, **opts) + extra_paths)


def flag(b, path="/"):
    """[(path, [url])] for start(): one backend (or a list of them)."""
    bs = b if isinstance(b, (list, tuple)) else [b]
    return [(path, [x if isinstance(x, str) else x.url for x in bs])]


# ---------------------------------------------------------------- client --


class Resp(HasFields):
    """A response as the client received it."""

    def __init__(self):
        self.status = None
        self.version = self.reason = None
        self.headers = []
        self.raw_head = b""
        self.body = b""
        self.framing = None       # "length", "chunked", "close" or "none"
        self.complete = True      # False: cut before its framing's end
        self.eof = False          # the connection ended while or after reading
        self.chunks = []          # chunk sizes as received
        self.last_chunk = False   # the 0-size chunk came
        self.trailers = []
        self.interim = []         # 1xx responses before this one

    def __repr__(self):
        return (f"<{self.version} {self.status} {self.framing} {len(self.body)} bytes "
                f"{short(self.body, 60)}>")


STATUS_RE = re.compile(rb"^(HTTP/1\.[01]) (\d{3}) ?([^\r\n]*)$")
FIELD_RE = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$")


class Client(SocketOwner):
    """A raw HTTP/1.1 client that checks what eddy sends strictly."""

    def __init__(self, addr, timeout=IO_TIMEOUT, rcvbuf=None, tls=None):
        fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        try:
            s.connect(addr)
            if tls:
                s = tls.wrap_socket(s, server_hostname="localhost")
        except BaseException:
            s.close()
            raise
        self.sock = s
        self.buf = b""
        self.eof = False
        self.how = None      # "eof" or "reset" once the connection ended

    def send(self, data):
        self.sock.sendall(data)

    def fill(self, deadline):
        """Reads more into buf; False at the end of the connection."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure(f"timed out waiting for eddy (have {short(self.buf)})")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 18)
        except socket.timeout:
            raise Failure(f"timed out waiting for eddy (have {short(self.buf)})")
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            data, self.how = b"", "reset"
        if not data:
            self.eof = True
            self.how = self.how or "eof"
            return False
        self.buf += data
        return True

    def take(self, n, deadline):
        while len(self.buf) < n:
            if not self.fill(deadline):
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self, deadline, limit=1 << 16):
        while b"\r\n" not in self.buf:
            check(len(self.buf) < limit, f"no CRLF in {short(self.buf)}")
            if not self.fill(deadline):
                return None
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out

    def read_head(self, deadline):
        while b"\r\n\r\n" not in self.buf:
            check(len(self.buf) < 1 << 20, "response head over 1 MiB")
            if not self.fill(deadline):
                raise Failure(f"connection {self.how} before a whole response head "
                              f"(got {short(self.buf)})")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head

    def read_response(self, method="GET", timeout=IO_TIMEOUT, cut_ok=False, keep_1xx=False, what=None):
        """Reads one response (skipping 1xx ones unless keep_1xx).  A body
        cut short fails the test unless cut_ok (then complete is False).
        what: said before any failure's message."""
        if what is None:
            return self._read_response(method, timeout, cut_ok, keep_1xx)
        try:
            return self._read_response(method, timeout, cut_ok, keep_1xx)
        except Failure as e:
            raise Failure(f"{what}: {e}") from None

    def _read_response(self, method, timeout, cut_ok, keep_1xx):
        deadline = time.monotonic() + timeout
        interim = []
        while True:
            r = parse_response_head(self.read_head(deadline))
            if 100 <= r.status < 200 and r.status != 101:
                interim.append(r)
                if keep_1xx:
                    return r
                continue
            break
        r.interim = interim
        if method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200:
            r.framing = "none"
            return r
        te = r.values("transfer-encoding")
        cl = r.values("content-length")
        check(not (te and cl), f"eddy sent both Content-Length and Transfer-Encoding: {r.headers}")
        if te:
            check_eq([v.lower() for v in te], ["chunked"], "Transfer-Encoding")
            r.framing = "chunked"
            body = bytearray()
            while True:
                line = self.line(deadline)
                if line is None:
                    break
                m = re.match(rb"^([0-9a-fA-F]+)(;.*)?$", line)
                check(m, f"bad chunk size line from eddy {short(line)}")
                size = int(m.group(1), 16)
                if size == 0:
                    while True:
                        t = self.line(deadline)
                        if not t:
                            break
                        r.trailers.append(t)
                    r.last_chunk = True
                    break
                data = self.take(size + 2, deadline)
                if data is None:
                    body += self.buf   # what came of the chunk
                    self.buf = b""
                    break
                check(data[-2:] == b"\r\n", f"chunk not followed by CRLF: {short(data[-10:])}")
                r.chunks.append(size)
                body += data[:-2]
            r.body = bytes(body)
            r.complete = r.last_chunk
        elif cl:
            check(len(cl) == 1 and cl[0].isdigit(), f"bad Content-Length from eddy {cl}")
            n = int(cl[0])
            r.framing = "length"
            data = self.take(n, deadline)
            if data is None:
                r.body, self.buf, r.complete = self.buf, b"", False
            else:
                r.body = data
        else:
            r.framing = "close"
            while self.fill(deadline):
                pass
            r.body, self.buf = self.buf, b""
        r.eof = self.eof
        if not r.complete and not cut_ok:
            raise Failure(f"response cut short ({r.framing}: {len(r.body)} body bytes, "
                          f"connection {self.how})")
        return r

    def read_until_closed(self, timeout=5):
        """Bytes until the connection ends; fails if it does not within timeout."""
        deadline = time.monotonic() + timeout
        while self.fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out

    def closed_within(self, seconds):
        """True if eddy ends the connection within seconds (no bytes may come)."""
        deadline = time.monotonic() + seconds
        try:
            while self.fill(deadline):
                pass
        except Failure:
            return False
        check(not self.buf, f"unexpected bytes {short(self.buf)}")
        return True

    def silent_for(self, seconds):
        """True if no byte (nor the end) comes within seconds."""
        if self.buf:
            return False
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return True
        except OSError:
            self.eof = True
            return False
        self.buf += data
        if not data:
            self.eof = True
        return False


def parse_response_head(head):
    check(b"\n" not in head.replace(b"\r\n", b""), f"bare LF in eddy's head {short(head)}")
    lines = head.split(b"\r\n")
    m = STATUS_RE.match(lines[0])
    check(m, f"bad status line from eddy {short(lines[0])}")
    r = Resp()
    r.raw_head = head
    r.version, r.status, r.reason = m.group(1).decode(), int(m.group(2)), m.group(3).decode("latin-1")
    for line in lines[1:]:
        f = FIELD_RE.match(line)
        check(f, f"bad field line from eddy {short(line)}")
        r.headers.append((f.group(1).decode(), f.group(2).decode("latin-1")))
    return r


def request(method="GET", target="/", fields=(), body=None, chunked=False, sizes=None,
            host="front.test", version="HTTP/1.1", trailers=()):
    """A request's bytes; a body gets Content-Length, or the chunked
    coding (in sizes, or random ones) with chunked."""
    out = [f"{method} {target} {version}\r\n".encode()]
    if host is not None:
        out.append(f"Host: {host}\r\n".encode())
    for k, v in fields:
        out.append(f"{k}: {v}\r\n".encode("latin-1"))
    if chunked:
        out.append(b"Transfer-Encoding: chunked\r\n\r\n")
        out.append(chunk_body(body or b"", sizes, trailers))
    else:
        if body is not None:
            out.append(f"Content-Length: {len(body)}\r\n".encode())
        out.append(b"\r\n")
        if body:
            out.append(body)
    return b"".join(out)


def exchange(addr, data, method="GET", timeout=IO_TIMEOUT, **kw):
    """data on a new connection; its response."""
    with Client(addr, timeout) as c:
        c.send(data)
        return c.read_response(method, timeout, **kw)


def get(addr, target="/", **kw):
    return exchange(addr, request("GET", target, **kw))


def only_request(b, what="the backend", timeout=5):
    """The one request b received (whole); fails unless exactly one came."""
    check(b.wait_requests(1, timeout), f"{what} received no request within {timeout} s "
          f"(got {b.requests})")
    b.quiet_for(0.1)
    check_eq(len(b.requests), 1, f"requests {what} received ({b.requests})")
    return b.requests[0]


def end_to_end(q):
    """A request's fields other than those the proxy owns, names lowered."""
    return [(k.lower(), v) for k, v in q.headers if k.lower() not in PROXY_OWNED]


def csv_values(values):
    return [x.strip() for v in values for x in v.split(",") if x.strip()]


def imf_date_ok(value):
    if not value or not re.match(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$",
                                 value):
        return False
    return abs(email.utils.parsedate_to_datetime(value).timestamp() - time.time()) < 120


# ------------------------------------------------------------- 1. requests --


def test_request_reserialized():
    """The backend gets method, target, HTTP/1.1 and the client's fields in
    their order, values without surrounding whitespace; an HTTP/1.0
    request goes out as HTTP/1.1."""
    with Backend() as b, start(flag(b)) as e:
        r = exchange(e.addr, b"GET /a/b%20c?x=1&y=%2F HTTP/1.1\r\nHost: front.test\r\n"
                     b"User-Agent: tester/1\r\nX-Order-1: one\r\nx-lower:   two  \r\nX-Dup: 1\r\n"
                     b"Accept: */*\r\nX-Dup: 2\r\nX-Empty:\r\n\r\n")
        check_eq((r.status, r.body), (200, b"A GET /a/b%20c?x=1&y=%2F"), "response")
        q = only_request(b)
        first = q.raw_head.split(b"\r\n", 1)[0]
        check_eq(first, b"GET /a/b%20c?x=1&y=%2F HTTP/1.1", "request line the backend got")
        check_eq(end_to_end(q), [("user-agent", "tester/1"), ("x-order-1", "one"),
                                 ("x-lower", "two"), ("x-dup", "1"), ("accept", "*/*"),
                                 ("x-dup", "2"), ("x-empty", "")],
                 f"the client's fields in order (the backend got {q.headers})")
        check_eq(q.values("host"), ["front.test"], "Host")
        check_eq(q.framing, "none", "framing of a GET without body")
        check_eq(q.values("content-length") + q.values("transfer-encoding"), [],
                 "framing fields on a GET without body")
        b.requests.clear()
        with Client(e.addr) as c:
            c.send(b"GET /old HTTP/1.0\r\nHost: front.test\r\nX-Ten: 1\r\n\r\n")
            r = c.read_response()
            check_eq((r.status, r.body), (200, b"A GET /old"), "HTTP/1.0 client's response")
            check(c.closed_within(3), "the HTTP/1.0 client's connection was not closed")
        q = only_request(b, "the backend (HTTP/1.0 client)")
        check_eq(q.raw_head.split(b"\r\n", 1)[0], b"GET /old HTTP/1.1", "request line of a 1.0 request")
        check_eq(end_to_end(q), [("x-ten", "1")], "fields of the 1.0 request")
        b.requests.clear()
        cookie = "c=" + "v" * 8000
        check_eq(get(e.addr, "/cookie", fields=[("Cookie", cookie), ("X-After", "1")]).status, 200,
                 "a request with an 8 KB field")
        check_eq(end_to_end(only_request(b, "the backend (8 KB field)")),
                 [("cookie", cookie), ("x-after", "1")], "an 8 KB field")


def test_methods_and_target_forms():
    """Each method with and without a body; an absolute-form target goes
    out in origin form."""
    with Backend() as b, start(flag(b)) as e:
        cases = [("DELETE", "/r/1", None), ("OPTIONS", "/r/2", None), ("PUT", "/r/3", b"put-body"),
                 ("PATCH", "/r/4", b"patch\x00\xffbody"), ("POST", "/r/5", b""),
                 ("GET", "http://front.test/abs?q=1", None)]
        for method, target, body in cases:
            b.requests.clear()
            r = exchange(e.addr, request(method, target, body=body))
            want = "/abs?q=1" if target.startswith("http:") else target
            check_eq((r.status, r.body), (200, f"A {method} {want}".encode()), f"{method} {target}")
            q = only_request(b, f"the backend ({method})")
            check_eq((q.method, q.target, q.version), (method, want, "HTTP/1.1"),
                     f"request line for {method} {target}")
            check_eq(bytes(q.body), body or b"", f"{method} body")
            if body:
                check_eq(q.framing, "length", f"{method} body framing")


def test_encoded_slash_kept():
    """%2F in a path is data, not a separator: it reaches the backend
    encoded (with and without strip-prefix), as other escapes do."""
    with Backend() as b:
        conf = ("listen: [127.0.0.1:0]\nworkers: 1\nshutdown-timeout: 1\nsites:\n"
                "  - default: true\n    paths:\n"
                "      - path: /\n" + proxy_block([b.url]) +
                "      - path: /api\n" + proxy_block([b.url], strip_prefix=True))
        with start(conf=conf) as e:
            wrong = []
            for sent, want in (("/a%2Fb", "/a%2Fb"), ("/a%2fb/c", "/a%2Fb/c"), ("/a%3Fb%23c", "/a%3Fb%23c"),
                               ("/api/x%2Fy", "/x%2Fy"), ("/a%20b?q=%2F", "/a%20b?q=%2F")):
                b.requests.clear()
                r = get(e.addr, sent)
                q = only_request(b, f"the backend ({sent})")
                if (r.status, q.target) != (200, want) and (r.status, q.target) != (200, sent):
                    wrong.append(f"{sent} went as {q.target} (want {want}; status {r.status})")
            check(not wrong, "; ".join(wrong))


def test_pipelined_client_requests():
    """Requests a client pipelines (one with a body) are answered in order."""
    with Backend() as b, start(flag(b)) as e, Client(e.addr) as c:
        c.send(request("GET", "/p1") + request("POST", "/p2", body=b"body-2") + request("GET", "/p3") +
               request("HEAD", "/p4") + request("GET", "/p5"))
        got = [c.read_response(m, what=f"response {i + 1}").body
               for i, m in enumerate(["GET", "POST", "GET", "HEAD", "GET"])]
        check_eq(got, [b"A GET /p1", b"A POST /p2", b"A GET /p3", b"", b"A GET /p5"], "bodies in order")
        check_eq([(q.method, q.target, bytes(q.body)) for q in b.requests],
                 [("GET", "/p1", b""), ("POST", "/p2", b"body-2"), ("GET", "/p3", b""),
                  ("HEAD", "/p4", b""), ("GET", "/p5", b"")], "requests at the backend")


def test_hop_by_hop_removed():
    """Connection, the fields it names, Keep-Alive, Proxy-Connection, TE,
    Upgrade and Trailer never reach the backend (Transfer-Encoding and
    Expect: see the body tests)."""
    with Backend() as b, start(flag(b)) as e:
        r = exchange(e.addr, request("GET", "/hop", [
            ("Connection", "keep-alive, X-Secret, x-other"), ("X-Secret", "s"), ("X-Other", "o"),
            ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"), ("TE", "trailers"),
            ("Upgrade", "foo/1"), ("Trailer", "X-T"), ("X-Kept", "yes")]))
        check_eq(r.status, 200, "status")
        q = only_request(b)
        leaked = [n for n in q.names() if n in HOP_BY_HOP - {"connection"} | {"x-secret", "x-other"}]
        check_eq(leaked, [], f"hop-by-hop fields the backend got ({q.headers})")
        check_eq(q.values("x-kept"), ["yes"], "an end-to-end field")
        bad = [v for v in q.values("connection") if v.lower() not in ("keep-alive", "close")]
        check_eq(bad, [], "Connection values sent (only eddy's own keep-alive or close may go)")


def test_hop_by_hop_removed_from_response():
    """The backend's Connection, the fields it names, Keep-Alive,
    Proxy-Connection, Upgrade and Trailer never reach the client."""
    def handler(req, conn):
        return response(200, b"ok", [("Connection", "X-Resp-Hop, keep-alive"), ("X-Resp-Hop", "1"),
                                     ("Keep-Alive", "timeout=99"), ("Proxy-Connection", "keep-alive"),
                                     ("Upgrade", "foo/1"), ("Trailer", "X-T"), ("X-Keep", "yes")])
    with Backend(handler) as b, start(flag(b)) as e:
        r = get(e.addr, "/")
        check_eq((r.status, r.body), (200, b"ok"), "response")
        leaked = [n for n in r.names() if n in {"x-resp-hop", "keep-alive", "proxy-connection",
                                                "upgrade", "trailer"}]
        check_eq(leaked, [], f"hop-by-hop fields the client got ({r.headers})")
        bad = [v for v in r.values("connection") if v.lower() not in ("keep-alive", "close")]
        check_eq(bad, [], "Connection values passed on")
        check_eq(r.values("x-keep"), ["yes"], "an end-to-end field")


# ------------------------------------------------ 2. forwarding, Host, paths --


def test_x_forwarded_set():
    """By default X-Forwarded-For, -Proto and -Host are eddy's: an
    untrusted client's own are dropped."""
    with Backend() as b, start(flag(b)) as e:
        r = exchange(e.addr, request("GET", "/xf", [("X-Forwarded-For", "6.6.6.6"),
                                                   ("X-Forwarded-Proto", "https"),
                                                   ("X-Forwarded-Host", "evil.test")],
                                     host="front.test:8080"))
        check_eq(r.status, 200, "status")
        q = only_request(b)
        check_eq(q.values("x-forwarded-for"), ["127.0.0.1"], "X-Forwarded-For")
        check_eq(q.values("x-forwarded-proto"), ["http"], "X-Forwarded-Proto")
        check_eq(q.values("x-forwarded-host"), ["front.test:8080"], "X-Forwarded-Host")
        check_eq(q.values("forwarded"), [], "Forwarded (not asked for)")
        check_eq(q.values("host"), ["front.test:8080"], "Host kept")


def test_x_forwarded_trusted():
    """From a trusted address (or CIDR block) the client's X-Forwarded-*
    are kept and its address appended; from an untrusted one dropped."""
    fields = [("X-Forwarded-For", "1.1.1.1, 2.2.2.2"), ("X-Forwarded-For", "3.3.3.3"),
              ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "orig.test")]
    for trust, kept in ((["127.0.0.1"], True), (["127.0.0.0/8"], True), (["10.0.0.0/8", "::1"], False)):
        with Backend() as b, start(conf=conf_for([b.url], trust=trust)) as e:
            check_eq(exchange(e.addr, request("GET", "/t", fields)).status, 200, "status")
            q = only_request(b)
            what = f"trust {trust}"
            if kept:
                check_eq(csv_values(q.values("x-forwarded-for")),
                         ["1.1.1.1", "2.2.2.2", "3.3.3.3", "127.0.0.1"], f"X-Forwarded-For, {what}")
                check_eq(q.values("x-forwarded-proto"), ["https"], f"X-Forwarded-Proto, {what}")
                check_eq(q.values("x-forwarded-host"), ["orig.test"], f"X-Forwarded-Host, {what}")
                # A trusted client that sends none gets eddy's.
                b.requests.clear()
                check_eq(get(e.addr, "/t2").status, 200, "status")
                q = only_request(b)
                check_eq((q.values("x-forwarded-for"), q.values("x-forwarded-proto"),
                          q.values("x-forwarded-host")), (["127.0.0.1"], ["http"], ["front.test"]),
                         f"X-Forwarded-* of a trusted client that sent none, {what}")
            else:
                check_eq((q.values("x-forwarded-for"), q.values("x-forwarded-proto"),
                          q.values("x-forwarded-host")), (["127.0.0.1"], ["http"], ["front.test"]),
                         f"X-Forwarded-*, {what}")


FWD_ELEMENT_RE = re.compile(r'^\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)=([!#$%&\'*+.^_`|~0-9A-Za-z-]+|"(?:[^"\\]|\\.)*")\s*$')


def forwarded_elements(values):
    """Forwarded field values as [(raw element, {param: value unquoted})];
    fails on syntax RFC 7239 does not allow."""
    out = []
    for v in values:
        for el in re.findall(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+', v):
            params = {}
            for pair in re.findall(r'(?:[^;"]|"(?:[^"\\]|\\.)*")+', el):
                m = FWD_ELEMENT_RE.match(pair)
                check(m, f"Forwarded pair {pair!r} is not token=token or token=quoted-string "
                      f"(field {v!r})")
                val = m.group(2)
                if val.startswith('"'):
                    val = re.sub(r"\\(.)", r"\1", val[1:-1])
                params[m.group(1).lower()] = val
            out.append((el.strip(), params))
    return out


def test_forwarded_rfc7239():
    """forwarded: forwarded sends Forwarded: for=;proto=;host= (host
    quoted, having a colon) and no X-Forwarded-*; the client's own is
    dropped."""
    with Backend() as b, start(conf=conf_for([b.url], forwarded="forwarded")) as e:
        r = exchange(e.addr, request("GET", "/f", [("Forwarded", "for=6.6.6.6;proto=https")],
                                     host="front.test:8080"))
        check_eq(r.status, 200, "status")
        q = only_request(b)
        els = forwarded_elements(q.values("forwarded"))
        check_eq([p for _, p in els], [{"for": "127.0.0.1", "proto": "http",
                                        "host": "front.test:8080"}],
                 f"Forwarded elements (field {q.values('forwarded')})")
        for name in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"):
            check_eq(q.values(name), [], f"{name} with forwarded: forwarded")


def test_forwarded_ipv6_quoted():
    """A client on ::1 is for="[::1]" (quoted, bracketed), and [::1] in
    X-Forwarded-For is ::1."""
    need_ipv6()
    with Backend() as b, start(conf=conf_for([b.url], listen=["[::1]:0"], forwarded="both")) as e:
        check_eq(get(e.addr, "/v6").status, 200, "status")
        q = only_request(b)
        fwd = q.values("forwarded")
        check_eq(len(fwd), 1, f"Forwarded fields ({fwd})")
        check(re.search(r'(^|;)\s*for="\[::1\]"\s*(;|$)', fwd[0]),
              f'Forwarded does not say for="[::1]": {fwd[0]!r}')
        check_eq(q.values("x-forwarded-for"), ["::1"], "X-Forwarded-For of an IPv6 client")


def test_forwarded_both_and_none():
    """forwarded: both sends both sets; none sends neither and passes the
    client's own as any field."""
    with Backend() as b, start(conf=conf_for([b.url], forwarded="both")) as e:
        check_eq(get(e.addr, "/both").status, 200, "status")
        q = only_request(b)
        check_eq([p for _, p in forwarded_elements(q.values("forwarded"))],
                 [{"for": "127.0.0.1", "proto": "http", "host": "front.test"}], "Forwarded (both)")
        check_eq((q.values("x-forwarded-for"), q.values("x-forwarded-proto"),
                  q.values("x-forwarded-host")), (["127.0.0.1"], ["http"], ["front.test"]),
                 "X-Forwarded-* (both)")
    with Backend() as b, start(conf=conf_for([b.url], forwarded="none")) as e:
        check_eq(exchange(e.addr, request("GET", "/none", [("X-Forwarded-For", "6.6.6.6"),
                                                           ("Forwarded", "for=6.6.6.6")])).status,
                 200, "status")
        q = only_request(b)
        check_eq((q.values("x-forwarded-for"), q.values("forwarded"), q.values("x-forwarded-proto"),
                  q.values("x-forwarded-host")), (["6.6.6.6"], ["for=6.6.6.6"], [], []),
                 "forwarding fields with forwarded: none")


def test_forwarded_trusted_appended():
    """A trusted client's Forwarded is kept and eddy's element appended."""
    with Backend() as b, start(conf=conf_for([b.url], forwarded="forwarded",
                                             trust=["127.0.0.1"])) as e:
        check_eq(exchange(e.addr, request("GET", "/ft", [
            ("Forwarded", 'for=1.2.3.4;proto=https, for="[2001:db8::1]"')])).status, 200, "status")
        q = only_request(b)
        els = forwarded_elements(q.values("forwarded"))
        check_eq([p for _, p in els], [{"for": "1.2.3.4", "proto": "https"}, {"for": "[2001:db8::1]"},
                                       {"for": "127.0.0.1", "proto": "http", "host": "front.test"}],
                 f"Forwarded elements (field {q.values('forwarded')})")


def test_host_kept_or_rewritten():
    """Host goes as the client sent it, or as `host:` says (then
    X-Forwarded-Host still tells the client's)."""
    with Backend() as b, start(flag(b)) as e:
        check_eq(get(e.addr, "/h", host="Front.Test:8080").status, 200, "status")
        check_eq(only_request(b).values("host"), ["Front.Test:8080"], "Host kept")
    with Backend() as b, start(conf=conf_for([b.url], host="backend.example")) as e:
        check_eq(get(e.addr, "/h", host="front.test:8080").status, 200, "status")
        q = only_request(b)
        check_eq(q.values("host"), ["backend.example"], "Host rewritten")
        check_eq(q.values("x-forwarded-host"), ["front.test:8080"], "X-Forwarded-Host")


def test_strip_prefix():
    """strip-prefix takes the route's path off (/api/x -> /x, /api -> /,
    query kept); a route without it forwards the path whole; /apix is not
    under /api."""
    with Backend() as b:
        conf = ("listen: [127.0.0.1:0]\nworkers: 1\nshutdown-timeout: 1\nsites:\n"
                "  - default: true\n    paths:\n"
                "      - path: /\n        respond: {status: 200, body: \"local\"}\n"
                "      - path: /api\n" + proxy_block([b.url], strip_prefix=True) +
                "      - path: /keep\n" + proxy_block([b.url]))
        with start(conf=conf) as e:
            wrong = []
            for sent, want in (("/api/x?q=1", "/x?q=1"), ("/api", "/"), ("/api?q=2", "/?q=2"),
                               ("/api/", "/"), ("/api/a%20b", "/a%20b"), ("/api/a/b", "/a/b"),
                               ("/keep/x", "/keep/x"), ("/keep", "/keep")):
                b.requests.clear()
                r = get(e.addr, sent)
                q = only_request(b, f"the backend ({sent})")
                if (r.status, q.target) != (200, want):
                    wrong.append(f"{sent} went as {q.target} (want {want}; status {r.status})")
            check(not wrong, "; ".join(wrong))
            b.requests.clear()
            r = get(e.addr, "/apix")
            check_eq((r.status, r.body), (200, b"local"), "/apix is not under /api")
            check(b.quiet_for(0.2) and not b.requests, f"/apix reached the backend: {b.requests}")


# --------------------------------------------------------------- 3. bodies --


def test_request_body_content_length():
    data = rand_bytes(4 * MiB + 7, "req-cl")
    with Backend() as b, start(flag(b)) as e:
        r = exchange(e.addr, request("POST", "/up", [("Content-Type", "application/octet-stream")],
                                     body=data), timeout=20)
        check_eq((r.status, r.body), (200, b"A POST /up"), "response")
        q = only_request(b)
        check_eq((len(q.body), sha(q.body)), (len(data), sha(data)), "body the backend got")
        check_eq((q.framing, q.values("content-length")), ("length", [str(len(data))]),
                 "framing of a body of known length")
        check_eq(q.values("transfer-encoding"), [], "Transfer-Encoding")


def test_request_body_chunked():
    data = rand_bytes(3 * MiB + 11, "req-chunked")
    with Backend() as b, start(flag(b)) as e:
        # Random chunk sizes, some with extensions (never passed as data),
        # and a trailer.
        rnd = random.Random("req-chunked")
        parts, i = [request("POST", "/up", [("Transfer-Encoding", "chunked")], host="front.test")], 0
        while i < len(data):
            n = rnd.randint(1, 200000)
            ext = b";ext=1" if rnd.random() < 0.3 else b""
            parts.append(b"%x%s\r\n%s\r\n" % (len(data[i:i + n]), ext, data[i:i + n]))
            i += n
        parts.append(b"0\r\nX-Trail: t\r\n\r\n")
        raw = b"".join(parts)
        r = exchange(e.addr, raw, timeout=20)
        check_eq((r.status, r.body), (200, b"A POST /up"), "response")
        q = only_request(b)
        check_eq((len(q.body), sha(q.body)), (len(data), sha(data)), "body the backend got")
        check(q.framing in ("chunked", "length"), f"framing {q.framing}")
        check(q.error is None, f"the backend's request: {q.error}")
        check_eq(len(q.values("content-length")) + len(q.values("transfer-encoding")), 1,
                 f"framing fields ({q.headers})")


def test_response_body_content_length():
    data = rand_bytes(5 * MiB + 3, "resp-cl")
    with Backend(lambda req, conn: response(200, data if req.target == "/big" else b"small")) as b, \
            start(flag(b)) as e, Client(e.addr) as c:
        c.send(request("GET", "/big"))
        r = c.read_response(timeout=8)
        check_eq((r.status, r.header("content-length")), (200, str(len(data))), "status, Content-Length")
        check_eq((len(r.body), sha(r.body)), (len(data), sha(data)), "body")
        c.send(request("GET", "/next"))
        check_eq(c.read_response().body, b"small", "the next response on the connection")


def test_response_body_chunked():
    data = rand_bytes(3 * MiB + 5, "resp-chunked")

    def handler(req, conn):
        if req.target == "/big":
            return response(200, data, chunked=True, trailers=[("X-Trail", "t")])
        return response(200, b"small")
    with Backend(handler) as b, start(flag(b)) as e, Client(e.addr) as c:
        c.send(request("GET", "/big"))
        r = c.read_response(timeout=8)
        check_eq(r.status, 200, "status")
        check(r.framing in ("chunked", "length"), f"framing {r.framing} (the connection must last)")
        check_eq((len(r.body), sha(r.body)), (len(data), sha(data)), "body")
        c.send(request("GET", "/next"))
        check_eq(c.read_response().body, b"small", "the next response on the connection")


def test_response_close_delimited():
    """A body ended by the backend's close goes chunked to an HTTP/1.1
    client (whose connection lasts) and close-delimited to HTTP/1.0."""
    data = rand_bytes(2 * MiB + 1, "resp-close")

    def handler(req, conn):
        if req.target == "/close":
            conn.send(response(200, data, length=None))
            conn.close()
            return None
        return response(200, b"small")
    with Backend(handler) as b, start(flag(b)) as e:
        with Client(e.addr) as c:
            c.send(request("GET", "/close"))
            r = c.read_response(timeout=20)
            check_eq((r.status, r.framing), (200, "chunked"), "status and framing to HTTP/1.1")
            check_eq((len(r.body), sha(r.body)), (len(data), sha(data)), "body")
            c.send(request("GET", "/next"))
            check_eq(c.read_response().body, b"small", "the next response on the connection")
        with Client(e.addr) as c:
            c.send(request("GET", "/close", version="HTTP/1.0"))
            r = c.read_response(timeout=20)
            check(r.framing in ("close", "length"), f"framing to HTTP/1.0: {r.framing}")
            check_eq((len(r.body), sha(r.body)), (len(data), sha(data)), "body to HTTP/1.0")
            check(r.eof or c.closed_within(3), "HTTP/1.0 connection not closed")


def test_head_keeps_content_length():
    def handler(req, conn):
        if req.method == "HEAD":
            return response(200, headers=[("X-Head", "1")], length=12345, head_only=True)
        return response(200, b"after")
    with Backend(handler) as b, start(flag(b)) as e, Client(e.addr) as c:
        c.send(request("HEAD", "/h"))
        r = c.read_response("HEAD")
        check_eq((r.status, r.header("content-length"), r.header("x-head")), (200, "12345", "1"),
                 "HEAD status, Content-Length, field")
        check_eq(r.values("transfer-encoding"), [], "Transfer-Encoding on HEAD")
        check(c.silent_for(0.3), f"bytes after the HEAD response: {short(c.buf)}")
        c.send(request("GET", "/g"))
        check_eq(c.read_response().body, b"after", "GET after HEAD")


def test_status_204_304():
    def handler(req, conn):
        if req.target == "/204":
            return response(204, headers=[("X-S", "204")], length=None)
        if req.target == "/304":
            return response(304, headers=[("ETag", '"v1"')], length=500, head_only=True)
        return response(200, b"after")
    with Backend(handler) as b, start(flag(b)) as e, Client(e.addr) as c:
        c.send(request("GET", "/204"))
        r = c.read_response(what="GET /204")
        check_eq((r.status, r.header("x-s"), r.values("transfer-encoding")), (204, "204", []), "204")
        check(c.silent_for(0.3), f"bytes after 204: {short(c.buf)}")
        c.send(request("GET", "/304", [("If-None-Match", '"v1"')]))
        r = c.read_response(what="GET /304 (after the 204)")
        check_eq((r.status, r.header("etag"), r.values("transfer-encoding")), (304, '"v1"', []), "304")
        check(c.silent_for(0.3), f"bytes after 304: {short(c.buf)}")
        c.send(request("GET", "/g"))
        check_eq(c.read_response(timeout=3, what="GET /g after a 304 with Content-Length: 500 "
                                 f"(the backend got {b.requests})").body, b"after",
                 "GET after 204 and 304")
        check_eq([q.target for q in b.requests], ["/204", "/304", "/g"], "requests")
        check(b.wait(lambda: len(b.conns) == 1, 0.1),
              f"the backend connection was not reused after 204/304: {b.conns}")


def test_response_fields_date_server():
    """The backend's status, fields (order, repeats) and body pass; its
    Date and Server are replaced by eddy's; its 404 and 500 pass as they
    are (not eddy's pages)."""
    def handler(req, conn):
        if req.target == "/404":
            return response(404, b"backend missing", [("Content-Type", "text/plain")])
        if req.target == "/500":
            return response(500, b"backend broke")
        return response(201, b"hello", [("Content-Type", "text/x-test"), ("Set-Cookie", "a=1"),
                                        ("X-Multi", "first"), ("Set-Cookie", "b=2; Path=/"),
                                        ("Date", "Mon, 01 Jan 1990 00:00:00 GMT"),
                                        ("Server", "backend/9.9"), ("Cache-Control", "no-store")])
    with Backend(handler) as b, start(flag(b)) as e:
        r = get(e.addr, "/")
        check_eq((r.status, r.body), (201, b"hello"), "status and body")
        check_eq(r.values("set-cookie"), ["a=1", "b=2; Path=/"], "Set-Cookie in order")
        check_eq((r.values("content-type"), r.values("x-multi"), r.values("cache-control")),
                 (["text/x-test"], ["first"], ["no-store"]), "fields")
        dates, servers = r.values("date"), r.values("server")
        check(len(dates) == 1 and imf_date_ok(dates[0]), f"Date: {dates} (want eddy's, now)")
        check(len(servers) == 1 and "eddy" in servers[0].lower(), f"Server: {servers} (want eddy's)")
        r = get(e.addr, "/404")
        check_eq((r.status, r.body), (404, b"backend missing"), "a backend's 404")
        r = get(e.addr, "/500")
        check_eq((r.status, r.body), (500, b"backend broke"), "a backend's 500")


# ------------------------------------------------------ 4. bad responses --

BAD_HEADS = [
    ("cl_and_te", b"HTTP/1.1 200 OK\r\nX-Leak: 1\r\nContent-Length: 9\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n4\r\nLEAK\r\n0\r\n\r\n"),
    ("two_content_lengths", b"HTTP/1.1 200 OK\r\nX-Leak: 1\r\nContent-Length: 4\r\n"
                            b"Content-Length: 5\r\n\r\nLEAK!"),
    ("content_length_list", b"HTTP/1.1 200 OK\r\nX-Leak: 1\r\nContent-Length: 4, 5\r\n\r\nLEAK!"),
    ("content_length_not_a_number", b"HTTP/1.1 200 OK\r\nX-Leak: 1\r\nContent-Length: 4x\r\n\r\nLEAK"),
    ("content_length_plus", b"HTTP/1.1 200 OK\r\nX-Leak: 1\r\nContent-Length: +4\r\n\r\nLEAK"),
    ("content_length_negative", b"HTTP/1.1 200 OK\r\nX-Leak: 1\r\nContent-Length: -4\r\n\r\nLEAK"),
    ("status_four_digits", b"HTTP/1.1 2000 OK\r\nX-Leak: 1\r\nContent-Length: 4\r\n\r\nLEAK"),
    ("status_two_digits", b"HTTP/1.1 20 OK\r\nX-Leak: 1\r\nContent-Length: 4\r\n\r\nLEAK"),
    ("status_missing", b"HTTP/1.1 OK\r\nX-Leak: 1\r\nContent-Length: 4\r\n\r\nLEAK"),
    ("bad_protocol", b"HTTQ/1.1 200 OK\r\nX-Leak: 1\r\nContent-Length: 4\r\n\r\nLEAK"),
    ("not_http", b"LEAK garbage that is no response at all\r\n\r\n"),
    ("space_before_colon", b"HTTP/1.1 200 OK\r\nX-Leak : 1\r\nContent-Length: 4\r\n\r\nLEAK"),
    ("obs_fold", b"HTTP/1.1 200 OK\r\nX-Leak: a\r\n folded\r\nContent-Length: 4\r\n\r\nLEAK"),
    ("bare_lf_field", b"HTTP/1.1 200 OK\r\nX-Leak: 1\nContent-Length: 4\r\n\r\nLEAK"),
    ("bare_lf_everywhere", b"HTTP/1.1 200 OK\nX-Leak: 1\nContent-Length: 4\n\nLEAK"),
    ("nul_in_value", b"HTTP/1.1 200 OK\r\nX-Leak: a\x00b\r\nContent-Length: 4\r\n\r\nLEAK"),
    ("bad_field_name", b"HTTP/1.1 200 OK\r\nX(Leak): 1\r\nContent-Length: 4\r\n\r\nLEAK"),
    ("empty_field_name", b"HTTP/1.1 200 OK\r\n: LEAK\r\nContent-Length: 4\r\n\r\nLEAK"),
    ("head_over_64k", b"HTTP/1.1 200 OK\r\nX-Leak: 1\r\n" +
                      b"".join(b"X-Fill-%03d: %s\r\n" % (i, b"f" * 1000) for i in range(70)) +
                      b"Content-Length: 4\r\n\r\nLEAK"),
]


def bad_framing_handler(req, conn):
    for name, raw in BAD_HEADS:
        if req.target == "/" + name:
            with contextlib.suppress(Closed):
                conn.send(raw)
            conn.close(conn.wait_eof(3))   # eddy should close it, never reuse it
            return None
    if req.target == "/big_head_ok":
        return response(200, b"fine", [(f"X-Fill-{i:02d}", "f" * 1000) for i in range(40)])
    return response(200, b"fine")


def test_bad_response_framing_502():
    """Each malformed response head is 502, with nothing of it passed on
    (no X-Leak field, no LEAK byte); a 40 KiB head is fine."""
    with Backend(bad_framing_handler) as b, start(conf=conf_for([b.url], max_fails=1000)) as e:
        wrong = []
        for name, _ in BAD_HEADS:
            try:
                r = get(e.addr, "/" + name)
            except Failure as ex:
                wrong.append(f"{name}: {ex}")
                continue
            if r.status != 502 or b"LEAK" in r.raw_head + r.body or r.values("x-leak"):
                wrong.append(f"{name}: got {r.status} {short(r.raw_head + b' | ' + r.body, 160)}")
        r = get(e.addr, "/big_head_ok")
        if r.status != 200 or len([n for n in r.names() if n.startswith("x-fill-")]) != 40:
            wrong.append(f"a 40 KiB head: got {r.status} with "
                         f"{len([n for n in r.names() if n.startswith('x-fill-')])} X-Fill fields")
        # Each connection that sent a bad response was closed by eddy.
        b.wait(lambda: all(c.closed for c in b.conns if c.requests and
                           c.requests[0].target != "/big_head_ok"), 4)
        for c in b.conns:
            if c.requests and c.requests[0].target != "/big_head_ok" and \
                    c.close_reason not in ("eof", "reset"):
                wrong.append(f"{c.requests[0].target}: eddy left the backend connection open "
                             f"({c.close_reason})")
        check(not wrong, "; ".join(wrong))
        check_eq(len(b.requests), len(BAD_HEADS) + 1, f"requests the backend got ({b.requests})")


def test_bad_chunk_in_response_cuts():
    """A bad chunk after the head was passed on cuts the response: no
    final chunk, the connection closed."""
    def handler(req, conn):
        conn.send(response(200, head_only=True, chunked=True) + b"5\r\nhello\r\nzz\r\nLEAK\r\n0\r\n\r\n")
        conn.wait_eof(3)
        conn.close()
    with Backend(handler) as b, start(flag(b)) as e, Client(e.addr) as c:
        c.send(request("GET", "/"))
        r = c.read_response(cut_ok=True, timeout=5)
        check_eq(r.status, 200, "status (the head had gone)")
        check(not r.complete, f"response completed with body {short(r.body)}")
        check(b"LEAK" not in r.body, f"bytes after the bad chunk passed: {short(r.body)}")
        check(r.eof or c.closed_within(3), "client connection not closed")


def test_backend_closes_before_response_502():
    """The backend closing (or resetting) before a whole head: 502, and
    nothing of a partial head passed on."""
    def handler(req, conn):
        if req.target == "/partial-status":
            conn.send(b"HTTP/1.1 200")
        elif req.target == "/partial-head":
            conn.send(b"HTTP/1.1 200 OK\r\nX-Leak: 1\r\nContent-Le")
        if req.target == "/reset":
            conn.reset()
        else:
            conn.close()
    with Backend(handler) as b, start(conf=conf_for([b.url], max_fails=1000)) as e:
        wrong = []
        for target in ("/nothing", "/partial-status", "/partial-head", "/reset"):
            for method in ("GET", "POST"):
                r = exchange(e.addr, request(method, target, body=b"x" if method == "POST" else None))
                if r.status != 502 or r.values("x-leak"):
                    wrong.append(f"{method} {target}: {r.status} {short(r.raw_head, 100)}")
        check(not wrong, "; ".join(wrong))


def test_backend_refuses_502():
    with start([("/", [f"http://127.0.0.1:{refused_port()}"])]) as e:
        r = get(e.addr, "/")
        check_eq(r.status, 502, "status with the backend refusing")


def test_backend_never_answers_504():
    """A backend that takes the request and says nothing: 504 after
    first-byte-timeout (1 s), and eddy closes its connection to it."""
    def handler(req, conn):
        conn.wait_eof(10)
        conn.close("eof")
    with Backend(handler) as b, start(conf=conf_for([b.url], first_byte_timeout=1)) as e:
        t0 = time.monotonic()
        r = get(e.addr, "/silent")
        took = time.monotonic() - t0
        check_eq(r.status, 504, "status")
        check(0.8 < took < 3, f"504 after {took:.2f} s, want about 1")
        check(b.requests and b.requests[0].target == "/silent", "the backend never got the request")
        check(b.wait(lambda: b.conns[0].closed, 2), "eddy kept the timed-out backend connection open")


def test_connect_timeout_504():
    """A backend whose accept queue is full (SYNs dropped): 504 after
    connect-timeout (1 s)."""
    lsock = socket.socket()
    filler = socket.socket()
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(0)
        filler.settimeout(2)
        filler.connect(lsock.getsockname())   # fills the queue: later SYNs are dropped
        url = f"http://127.0.0.1:{lsock.getsockname()[1]}"
        with start(conf=conf_for([url], connect_timeout=1)) as e:
            t0 = time.monotonic()
            r = get(e.addr, "/")
            took = time.monotonic() - t0
            check_eq(r.status, 504, "status")
            check(0.8 < took < 3.5, f"504 after {took:.2f} s, want about 1")
    finally:
        filler.close()
        lsock.close()


def test_all_backends_down_503():
    """Two refusing backends with max-fails 1: after they failed, 503 at once."""
    urls = [f"http://127.0.0.1:{refused_port()}", f"http://127.0.0.1:{refused_port()}"]
    with start(conf=conf_for(urls, max_fails=1, fail_timeout=30)) as e:
        first = get(e.addr, "/").status
        check(first in (502, 503), f"first request: {first}, want 502 (or 503)")
        for i in range(3):
            t0 = time.monotonic()
            r = get(e.addr, "/")
            check_eq(r.status, 503, f"request {i + 2} with every backend down")
            check(time.monotonic() - t0 < 1, "503 was not at once")


def test_down_backend_comes_back():
    """A backend marked down (max-fails 1) is tried again after fail-timeout."""
    port = refused_port()
    with start(conf=conf_for([f"http://127.0.0.1:{port}"], max_fails=1, fail_timeout=1)) as e:
        check_eq(get(e.addr, "/").status, 502, "first request (refused)")
        try:
            r = exchange(e.addr, request("GET", "/"), timeout=3)
        except Failure as ex:
            raise Failure(f"second request, the only backend marked down: want 503, got {ex}")
        check_eq(r.status, 503, "second request (the only backend marked down)")
        with Backend(port=port) as b:
            time.sleep(1.3)
            with Client(e.addr) as c:
                c.send(request("GET", "/back"))
                r = c.read_response(timeout=3, what="after fail-timeout, with the backend up again "
                                    f"(it got {len(b.conns)} connections)")
            check_eq((r.status, r.body), (200, b"A GET /back"), "after fail-timeout, the backend up")


def test_retry_idempotent_to_other_backend():
    """With one backend refusing, every GET succeeds (retried to the other)."""
    with Backend(name="A") as a:
        down = f"http://127.0.0.1:{refused_port()}"
        for conf in (conf_for([a.url, down], max_fails=1000), conf_for([down, a.url], max_fails=1000)):
            a.requests.clear()
            with start(conf=conf) as e:
                statuses = [get(e.addr, f"/r{i}").status for i in range(10)]
                check_eq(statuses, [200] * 10, "statuses with one backend refusing")
                check_eq(len(a.requests), 10, "requests the live backend got")


def test_post_not_retried_after_body():
    """A POST whose body went to a backend that then closed is 502, never
    sent to the other backend."""
    def closer(req, conn):
        conn.close()
    with Backend(closer, name="A") as a, Backend(name="B") as b, \
            start(conf=conf_for([a.url, b.url], max_fails=1000)) as e:
        got = []
        for i in range(6):
            r = exchange(e.addr, request("POST", f"/p{i}", body=b"payload-%d" % i))
            got.append((f"/p{i}", r.status, r.header("x-backend")))
        b.quiet_for(0.3)
        to_a = {q.target for q in a.requests}
        to_b = [q.target for q in b.requests]
        check(len(to_a) >= 2, f"round-robin sent only {sorted(to_a)} to the closing backend")
        twice = sorted(to_a & set(to_b))
        check_eq(twice, [], f"POSTs sent to both backends (responses {got})")
        for target, status, name in got:
            want = 502 if target in to_a else 200
            check_eq(status, want, f"POST {target}")


def test_stale_keepalive_connection_retried():
    """The backend closes each connection right after its response
    (without saying so): the next GET, which may find that connection
    closed, still succeeds."""
    def handler(req, conn):
        conn.send(response(200, f"ok {req.target}"))
        conn.close()
    with Backend(handler) as b, start(flag(b)) as e, Client(e.addr) as c:
        for i in range(12):
            c.send(request("GET", f"/s{i}"))
            r = c.read_response()
            check_eq((r.status, r.body), (200, f"ok /s{i}".encode()), f"GET /s{i}")
            if i % 3 == 2:
                time.sleep(0.05)


# -------------------------------------------------- 5. connections, time --


def test_keepalive_reuse():
    """Requests one after another (from different clients) share one
    backend connection; keepalive: off opens one per request."""
    with Backend() as b, start(flag(b)) as e:
        for i in range(5):
            check_eq(get(e.addr, f"/k{i}").status, 200, f"GET /k{i}")
        check_eq([(q.conn_id, q.index) for q in b.requests], [(0, i) for i in range(5)],
                 "(connection, index) of each request at the backend")
        check_eq(len(b.conns), 1, "backend connections")
        # A response saying Connection: close ends that connection: the
        # next request goes on a new one.
        b.handler = lambda req, conn: response(200, b"bye", [("Connection", "close")])
        check_eq(get(e.addr, "/close").body, b"bye", "a response with Connection: close")
        b.handler = lambda req, conn: response(200, b"new")
        check_eq(get(e.addr, "/next").body, b"new", "the request after it")
        check_eq([(q.target, q.conn_id) for q in b.requests[5:]], [("/close", 0), ("/next", 1)],
                 "connections after Connection: close")
    with Backend() as b, start(conf=conf_for([b.url], keepalive="off")) as e:
        for i in range(4):
            check_eq(get(e.addr, f"/k{i}").status, 200, f"GET /k{i} (keepalive off)")
        check_eq([(q.conn_id, q.index) for q in b.requests], [(i, 0) for i in range(4)],
                 "(connection, index) with keepalive off")
        check(b.wait(lambda: all(c.closed for c in b.conns), 2),
              f"backend connections left open with keepalive off: {b.conns}")


def test_idle_timeout_closes_backend_connection():
    with Backend() as b, start(conf=conf_for([b.url], idle_timeout=0.5)) as e:
        check_eq(get(e.addr, "/").status, 200, "status")
        t0 = time.monotonic()
        check(b.wait(lambda: b.conns[0].closed, 4), "the idle backend connection was never closed")
        took = b.conns[0].closed_at - t0
        check(b.conns[0].close_reason in ("eof", "reset"), f"closed by {b.conns[0].close_reason}")
        check(0.25 < took < 2.5, f"closed {took:.2f} s after the response, want about 0.5")


def test_backend_dies_mid_body_content_length():
    """After the head was passed on, the backend dying cuts the response:
    the client gets a prefix of the body and its connection closed."""
    data = rand_bytes(200 * 1024, "mid-cl")

    def handler(req, conn):
        conn.send(response(200, length=MiB, head_only=True) + data)
        time.sleep(0.2)
        conn.close()
    with Backend(handler) as b, start(flag(b)) as e, Client(e.addr) as c:
        c.send(request("GET", "/"))
        r = c.read_response(cut_ok=True, timeout=6)
        check_eq((r.status, r.header("content-length")), (200, str(MiB)), "head passed on")
        check(not r.complete, "the response was complete?")
        check(r.eof, "the client connection was not closed")
        check(data.startswith(r.body), f"body is not a prefix of what the backend sent "
              f"({len(r.body)} bytes)")


def test_backend_dies_mid_body_chunked():
    data = rand_bytes(100 * 1024, "mid-chunked")

    def handler(req, conn):
        body = chunk_body(data, [8192])
        conn.send(response(200, head_only=True, chunked=True) + body[:-5])   # no final chunk
        time.sleep(0.2)
        conn.close()
    with Backend(handler) as b, start(flag(b)) as e, Client(e.addr) as c:
        c.send(request("GET", "/"))
        r = c.read_response(cut_ok=True, timeout=6)
        check_eq((r.status, r.framing), (200, "chunked"), "head passed on")
        check(not r.last_chunk, "eddy sent the final 0 chunk of a cut response")
        check(r.eof, "the client connection was not closed")
        check(data.startswith(r.body), "body is not a prefix of what the backend sent")


def test_read_timeout_cuts_stalled_response():
    def handler(req, conn):
        conn.send(response(200, length=100000, head_only=True) + b"s" * 1000)
        conn.wait_eof(8)
        conn.close()
    with Backend(handler) as b, start(conf=conf_for([b.url], read_timeout=1)) as e, \
            Client(e.addr) as c:
        c.send(request("GET", "/"))
        t0 = time.monotonic()
        r = c.read_response(cut_ok=True, timeout=8)
        took = time.monotonic() - t0
        check_eq((r.status, r.complete, r.eof), (200, False, True), "status, complete, closed")
        check(0.8 < took < 4, f"cut after {took:.2f} s, want about 1")
        check(b.wait(lambda: b.conns[0].closed, 2), "backend connection left open")


def test_slow_client_bounded_memory():
    """64 MiB to a client that stops reading, then reads: eddy's RSS stays
    within 32 MiB of its start while the backend is held back by TCP."""
    size = 64 * MiB
    data = rand_bytes(size, "slow-client")
    state = {}

    def handler(req, conn):
        if req.target != "/big":
            return response(200, b"warm")
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        state["conn"] = conn
        conn.send(response(200, length=size, head_only=True))
        view = memoryview(data)
        for i in range(0, size, MiB):
            conn.send(view[i:i + MiB])
        return None
    with Backend(handler) as b, start(flag(b)) as e:
        check_eq(get(e.addr, "/warm").body, b"warm", "warm-up")
        base = e.rss_kib()
        peak = base
        with Client(e.addr, timeout=30, rcvbuf=65536) as c:
            c.send(request("GET", "/big"))
            deadline = time.monotonic() + 30
            head = parse_response_head(c.read_head(deadline))
            check_eq((head.status, head.header("content-length")), (200, str(size)), "head")
            time.sleep(1.0)
            sent1 = state["conn"].sent
            peak = max(peak, e.rss_kib())
            time.sleep(1.0)
            sent2 = state["conn"].sent
            peak = max(peak, e.rss_kib())
            body = bytearray(c.buf)
            c.buf = b""
            next_pause = len(body) + 8 * MiB
            c.sock.settimeout(5)
            while len(body) < size:
                try:
                    chunk = c.sock.recv(1 << 18)
                except socket.timeout:
                    raise Failure(f"eddy sent nothing for 5 s with {len(body)} of {size} body bytes "
                                  f"sent to the client and {state['conn'].sent} bytes taken from "
                                  "the backend")
                check(chunk, f"connection closed after {len(body)} of {size} bytes")
                body += chunk
                if len(body) >= next_pause:   # a slow reader: a pause every 8 MiB
                    next_pause += 8 * MiB
                    peak = max(peak, e.rss_kib())
                    time.sleep(0.1)
        check_eq((len(body), sha(body)), (size, sha(data)), "body")
        check(sent2 - sent1 < 2 * MiB, f"the backend kept sending while the client read nothing "
              f"({sent1 >> 10} KiB, then {sent2 >> 10} KiB after 1 s more): no backpressure")
        check(sent2 < size - 8 * MiB, f"the backend had sent {sent2 >> 20} MiB to a client that "
              f"read nothing")
        growth = (peak - base) // 1024
        if sanitized():
            return f"RSS +{growth} MiB (not bounded under ASan's quarantine)"
        check(growth < 32, f"eddy's RSS grew by {growth} MiB (from {base >> 10} to {peak >> 10} MiB)")
        return f"RSS +{growth} MiB, backend held at {sent2 >> 10} KiB"


def test_slow_backend_trickle():
    """A head and body trickled a few bytes at a time arrive whole, in
    both framings."""
    data = rand_bytes(30000, "trickle")

    def handler(req, conn):
        if req.target == "/cl":
            raw = response(200, data, [("X-T", "cl")])
        else:
            raw = response(200, data, [("X-T", "chunked")], chunked=True, chunks=[997])
        head, body = raw.split(b"\r\n\r\n", 1)
        conn.send_slowly(head + b"\r\n\r\n", piece=3, delay=0.004)
        conn.send_slowly(body, piece=1000, delay=0.01)
    with Backend(handler) as b, start(flag(b)) as e, Client(e.addr) as c:
        for target in ("/cl", "/chunked"):
            c.send(request("GET", target))
            r = c.read_response(timeout=15)
            check_eq((r.status, r.header("x-t"), sha(r.body)), (200, target[1:], sha(data)),
                     f"trickled {target}")


def test_response_streams_as_it_comes():
    """The first part of a body reaches the client before the backend
    sends the rest (eddy does not wait for the whole)."""
    def handler(req, conn):
        first, rest = b"first part;", b"the rest"
        if req.target == "/cl":
            conn.send(response(200, length=len(first + rest), head_only=True) + first)
            conn.hold(1.5)
            conn.send(rest)
        else:
            conn.send(response(200, head_only=True, chunked=True) + b"b\r\nfirst part;\r\n")
            conn.hold(1.5)
            conn.send(b"8\r\nthe rest\r\n0\r\n\r\n")
    with Backend(handler) as b, start(flag(b)) as e, Client(e.addr) as c:
        for target in ("/cl", "/chunked"):
            t0 = time.monotonic()
            c.send(request("GET", target))
            deadline = t0 + 5
            while b"first part;" not in c.buf:
                check(c.fill(deadline), "connection closed")
            took = time.monotonic() - t0
            check(took < 1.2, f"{target}: the first part came after {took:.2f} s "
                  "(the backend held the rest 1.5 s)")
            r = c.read_response(timeout=5)
            check_eq(r.body, b"first part;the rest", f"{target} body")


def test_request_body_streams():
    """The backend gets the head and the first body bytes before the
    client sent the rest."""
    data = rand_bytes(2 * MiB, "req-stream")
    with Backend() as b, start(flag(b)) as e, Client(e.addr) as c:
        raw = request("POST", "/s", body=data)
        split = len(raw) - len(data) + 64 * 1024
        c.send(raw[:split])
        ok = b.wait(lambda: b.requests and len(b.requests[0].body) > 0, 3)
        check(ok, f"the backend got nothing of the body in 3 s while the client held the rest "
              f"({b.requests})")
        c.send(raw[split:])
        r = c.read_response(timeout=15)
        check_eq(r.status, 200, "status")
        check(b.wait_requests(1, 5), "incomplete")
        check_eq(sha(b.requests[0].body), sha(data), "body")


def test_expect_100_continue():
    """Expect: 100-continue is answered 100, then the body reaches the
    backend (without the Expect field)."""
    data = rand_bytes(100000, "expect")
    with Backend() as b, start(flag(b)) as e, Client(e.addr) as c:
        c.send(b"POST /e HTTP/1.1\r\nHost: front.test\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % len(data))
        r = c.read_response(keep_1xx=True, timeout=3)
        check_eq(r.status, 100, "the interim response")
        c.send(data)
        r = c.read_response(timeout=10)
        check_eq((r.status, r.body), (200, b"A POST /e"), "final response")
        q = only_request(b)
        check_eq((sha(q.body), q.values("expect")), (sha(data), []), "body and Expect at the backend")


def test_client_leaves_mid_request():
    """A client gone mid-body: the backend sees its connection closed."""
    with Backend() as b, start(flag(b)) as e:
        with Client(e.addr) as c:
            c.send(request("POST", "/gone", body=b"x" * MiB)[:100 * 1024])
            check(b.wait(lambda: b.requests and len(b.requests[0].body) > 0, 3),
                  "the backend got no part of the body")
        check(b.wait(lambda: b.conns[0].closed, 4),
              f"the backend connection stayed open after the client left ({b.conns})")
        q = b.requests[0]
        check(not q.complete and len(q.body) < MiB, f"request {q}")
        check(b.conns[0].close_reason in ("eof", "reset"), f"closed: {b.conns[0].close_reason}")


# ------------------------------------------------------------ 6. smuggling --


def test_smuggling_body_is_one_request():
    """A body that holds a second request reaches the backend as one
    request with that body (Content-Length and chunked)."""
    inner = b"GET /smuggled HTTP/1.1\r\nHost: front.test\r\n\r\n"
    cases = [("content-length", request("POST", "/first", body=inner), inner),
             ("cl-with-0-chunk", request("POST", "/first", body=b"0\r\n\r\n" + inner),
              b"0\r\n\r\n" + inner),
             ("chunked", request("POST", "/first", body=b"0\r\n\r\n" + inner, chunked=True,
                                 sizes=[7]), b"0\r\n\r\n" + inner)]
    for name, raw, body in cases:
        with Backend() as b, start(flag(b)) as e, Client(e.addr) as c:
            c.send(raw)
            r = c.read_response()
            check_eq((r.status, r.body), (200, b"A POST /first"), f"{name}: response")
            c.send(request("GET", "/after"))
            check_eq(c.read_response().body, b"A GET /after", f"{name}: the next request")
            b.quiet_for(0.3)
            check_eq([(q.method, q.target, bytes(q.body)) for q in b.requests],
                     [("POST", "/first", body), ("GET", "/after", b"")],
                     f"{name}: requests the backend got")


def test_client_cl_and_te_refused():
    """Content-Length with Transfer-Encoding from a client: 400, nothing
    reaches the backend."""
    with Backend() as b, start(flag(b)) as e:
        r = exchange(e.addr, b"POST /x HTTP/1.1\r\nHost: front.test\r\nContent-Length: 36\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        check_eq(r.status, 400, "status")
        time.sleep(0.3)
        check_eq((len(b.conns), b.requests), (0, []), "connections and requests at the backend")


# ---------------------------------------------------------- 7. concurrency --


def test_concurrent_thousand():
    """1,000 requests at once to a backend that takes 1 s each: all 200,
    each with its own body, in a few seconds."""
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 3 * n + 200:
        raise Skip(f"RLIMIT_NOFILE hard limit {hard} is too low for {n} connections")

    def handler(req, conn):
        conn.hold(1.0)
        return response(200, f"slow {req.target}")
    with Backend(handler) as b, start(flag(b), args=["--max-conns", str(4 * n)]) as e:
        host, port = e.addr

        async def one(i):
            r, w = await asyncio.open_connection(host, port)
            try:
                w.write(f"GET /c/{i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
                data = await r.read()
            finally:
                w.close()
            return data

        async def all_of_them():
            return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n)),
                                                         return_exceptions=True), 20)
        t0 = time.monotonic()
        results = asyncio.run(all_of_them())
        took = time.monotonic() - t0
        bad = []
        for i, res in enumerate(results):
            if isinstance(res, BaseException):
                bad.append(f"/c/{i}: {type(res).__name__} {res}")
            elif not (res.startswith(b"HTTP/1.1 200 ") and res.endswith(f"slow /c/{i}".encode())):
                bad.append(f"/c/{i}: {short(res, 80)}")
        check(not bad, f"{len(bad)} of {n} failed, e.g. {bad[:3]}")
        check(took < 8, f"{n} requests took {took:.1f} s (each backend answer takes 1 s)")
        return f"{n} in {took:.1f} s over {len(b.conns)} backend connections"


# ---------------------------------------------- 8. clients and backends --


def curl_headers(text):
    """(status, {name: [values]}) of curl -D output's last response."""
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    lines = blocks[-1].split("\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields.setdefault(k.strip().lower(), []).append(v.strip())
    return status, fields


def test_http2_client():
    """curl over h2c: GET and a 1 MiB POST go to the backend as HTTP/1.1
    (Host from :authority); a chunked 2 MiB response arrives whole."""
    curl = run.need_curl()
    up = rand_bytes(MiB + 3, "h2-up")
    down = rand_bytes(2 * MiB + 9, "h2-down")

    def handler(req, conn):
        if req.target == "/down":
            return response(200, down, [("X-Backend", "A")], chunked=True)
        return response(200, f"A {req.method} {req.target}", [("X-Backend", "A")])
    d = scratch()
    (d / "up.bin").write_bytes(up)
    with Backend(handler) as b, start(flag(b)) as e:
        host, port = e.addr
        for args, target in (([], "/g?x=1"), (["--data-binary", f"@{d / 'up.bin'}"], "/post"),
                             ([], "/down")):
            p = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-o", str(d / "out"),
                                "-D", str(d / "hdr"), "-w", "%{http_version}", *args,
                                e.url(target)], capture_output=True, timeout=20)
            check_eq((p.returncode, p.stdout), (0, b"2"), f"curl {target} ({short(p.stderr)})")
            status, fields = curl_headers((d / "hdr").read_text())
            check_eq((status, fields.get("x-backend")), (200, ["A"]), f"{target}: status, X-Backend")
            out = (d / "out").read_bytes()
            if target == "/down":
                check_eq((len(out), sha(out)), (len(down), sha(down)), "chunked body over h2")
            else:
                check_eq(out, f"A {'POST' if args else 'GET'} {target}".encode(), f"{target} body")
        check_eq([(q.method, q.target, q.version) for q in b.requests],
                 [("GET", "/g?x=1", "HTTP/1.1"), ("POST", "/post", "HTTP/1.1"),
                  ("GET", "/down", "HTTP/1.1")], "requests at the backend")
        q = b.requests[1]
        check_eq((len(q.body), sha(q.body)), (len(up), sha(up)), "POST body over h2")
        check_eq(b.requests[0].values("host"), [f"{host}:{port}"], "Host from :authority")
        pseudo = [n for q in b.requests for n in q.names() if n.startswith(":")]
        check_eq(pseudo, [], "pseudo-header fields at the backend")


def test_paused_backend_body_not_held():
    """While a response's bytes come at once, eddy holds the client's last
    partial packet for them (MSG_MORE; over TLS its records wait in eddy);
    when the backend pauses, what was held goes within PROXY_PUSH_MS
    (1 ms), not when the kernel's 200 ms timer or the next piece sends it:
    the head, then each piece, sent a quarter second apart, plain and TLS."""
    pieces, gap = 3, 0.25
    sent = []

    def handler(req, conn):
        sent.append(time.monotonic())
        conn.send(response(200, length=pieces * 1000, head_only=True))
        for i in range(pieces):
            if not conn.hold(gap):
                return
            sent.append(time.monotonic())
            conn.send(bytes([65 + i]) * 1000)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    with Backend(handler) as b, start(flag(b), tls_listen=("127.0.0.1:0",)) as e:
        for tls in (False, True):
            addr = e.tls[0] if tls else e.plain[0]
            with Client(addr, tls=ctx if tls else None) as c:
                sent.clear()
                c.send(request("GET", "/paused"))
                deadline = time.monotonic() + 10
                lags = []  # the head's, then each piece's
                while len(lags) < pieces + 1:
                    check(c.fill(deadline), "connection closed")
                    head, done, body = bytes(c.buf).partition(b"\r\n\r\n")
                    have = (1 + len(body) // 1000) if done else 0
                    while len(lags) < have and len(sent) > len(lags):
                        lags.append(time.monotonic() - sent[len(lags)])
                worst = max(lags)
                check(worst < 0.15, f"{'TLS' if tls else 'plain'}: bytes reached the client "
                      f"{worst * 1000:.0f} ms after the backend sent them "
                      f"(head, pieces: {[round(x * 1000) for x in lags]} ms)")
                r = c.read_response(timeout=5)
                check_eq(r.body, b"".join(bytes([65 + i]) * 1000 for i in range(pieces)), "the body")


def test_tls_client():
    """HTTPS clients (HTTP/1.1 and h2 by ALPN) proxied; the backend is
    told proto https."""
    curl = run.need_curl()
    up = rand_bytes(MiB, "tls-up")
    with Backend() as b, start(flag(b), listen=(), tls_listen=("127.0.0.1:0",)) as e:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        with Client(e.addr, tls=ctx) as c:
            c.send(request("GET", "/secure"))
            r = c.read_response()
            check_eq((r.status, r.body), (200, b"A GET /secure"), "HTTPS GET")
        q = only_request(b)
        check_eq((q.values("x-forwarded-proto"), q.values("x-forwarded-for")), (["https"], ["127.0.0.1"]),
                 "X-Forwarded-Proto and -For over TLS")
        (scratch() / "tls-up.bin").write_bytes(up)
        cert, _ = make_cert()
        p = subprocess.run([curl, "-sS", "--http2", "--cacert", str(cert), "-o", str(scratch() / "tls-out"),
                            "-w", "%{http_version}", "--data-binary", f"@{scratch() / 'tls-up.bin'}",
                            e.url("/tls-post", tls=True)], capture_output=True, timeout=20)
        check_eq((p.returncode, p.stdout), (0, b"2"), f"curl --http2 over TLS ({short(p.stderr)})")
        check_eq((scratch() / "tls-out").read_bytes(), b"A POST /tls-post", "body over h2 and TLS")
        check_eq(sha(b.requests[-1].body), sha(up), "POST body over h2 and TLS")


def test_unix_socket_backend():
    data = rand_bytes(MiB + 1, "unix")
    with Backend(family="unix") as b, start(flag(b)) as e:
        r = get(e.addr, "/u")
        check_eq((r.status, r.body), (200, b"A GET /u"), "GET via a unix socket")
        r = exchange(e.addr, request("POST", "/u", body=data), timeout=15)
        check_eq(r.status, 200, "POST via a unix socket")
        check_eq(sha(b.requests[-1].body), sha(data), "body")
        check_eq(b.requests[0].values("x-forwarded-for"), ["127.0.0.1"], "X-Forwarded-For")


def test_ipv6_backend():
    need_ipv6()
    with Backend(family="tcp6") as b, start(flag(b)) as e:
        check(b.url.startswith("http://[::1]:"), b.url)
        r = get(e.addr, "/v6")
        check_eq((r.status, r.body), (200, b"A GET /v6"), "GET via [::1]")
        check_eq(only_request(b).values("host"), ["front.test"], "Host")


def test_backend_by_name():
    """http://localhost:PORT: the name is resolved at start; every
    request succeeds (an address that refuses is retried elsewhere)."""
    try:
        socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)
    except socket.gaierror as err:   # a bare root without /etc/hosts
        raise Skip(f"'localhost' does not resolve here: {err}")
    with Backend() as b, start([("/", [f"http://localhost:{b.port}"])]) as e:
        statuses = [get(e.addr, f"/n{i}").status for i in range(6)]
        check_eq(statuses, [200] * 6, "statuses")


# ------------------------------------------------- 9. balancing, health --


def test_round_robin_alternates():
    with Backend(name="A") as a, Backend(name="B") as b, start(flag([a, b])) as e:
        names = [get(e.addr, f"/{i}").header("x-backend") for i in range(8)]
        check(names in (["A", "B"] * 4, ["B", "A"] * 4), f"backends in turn: {names}")


def slow_or_fast(req, conn):
    if req.target.startswith("/slow"):
        conn.hold(2.5)
    return response(200, f"{conn.backend.name} {req.target}", [("X-Backend", conn.backend.name)])


def test_least_conn_prefers_idle():
    """least-conn: while one backend has a request in flight, the others
    go to the idle one."""
    with Backend(slow_or_fast, name="A") as a, Backend(slow_or_fast, name="B") as b, \
            start(conf=conf_for([a.url, b.url], balance="least-conn")) as e:
        for warm in range(2):   # whatever a first pick does
            get(e.addr, "/warm")
        slow = Client(e.addr)
        try:
            slow.send(request("GET", "/slow"))
            check(a.wait(lambda: any(q.target == "/slow" for q in a.requests + b.requests), 2),
                  "the slow request reached no backend")
            busy = "A" if any(q.target == "/slow" for q in a.requests) else "B"
            names = [get(e.addr, f"/fast{i}").header("x-backend") for i in range(5)]
            idle = "B" if busy == "A" else "A"
            check_eq(names, [idle] * 5, f"backends of the quick requests while {busy} is busy")
            check_eq(slow.read_response().status, 200, "the slow request")
        finally:
            slow.close()


def test_max_conns_per_backend():
    """max-conns: 1: a backend at its limit is passed over; with none
    left, 503 at once."""
    with Backend(slow_or_fast, name="A") as a, Backend(slow_or_fast, name="B") as b, \
            start(conf=conf_for([a.url, b.url], max_conns=1)) as e:
        slow = Client(e.addr)
        try:
            slow.send(request("GET", "/slow"))
            check(a.wait(lambda: any(q.target == "/slow" for q in a.requests + b.requests), 2),
                  "the slow request reached no backend")
            busy = "A" if any(q.target == "/slow" for q in a.requests) else "B"
            names = [get(e.addr, f"/fast{i}").header("x-backend") for i in range(4)]
            check_eq(names, ["B" if busy == "A" else "A"] * 4, f"quick requests while {busy} is full")
            check_eq(slow.read_response().status, 200, "the slow request")
        finally:
            slow.close()
    with Backend(slow_or_fast) as a, start(conf=conf_for([a.url], max_conns=1)) as e:
        with Client(e.addr) as slow:
            slow.send(request("GET", "/slow"))
            check(a.wait(lambda: a.requests, 2), "the slow request did not arrive")
            t0 = time.monotonic()
            r = get(e.addr, "/fast")
            check_eq(r.status, 503, "a request while the only backend is full")
            check(time.monotonic() - t0 < 1, "the 503 was not at once")
            check_eq(slow.read_response().status, 200, "the slow request")


def test_passive_health_skips_failing_backend():
    """A backend that breaks max-fails (2) exchanges in a row is skipped
    for fail-timeout (1.5 s), then tried again."""
    def closer(req, conn):
        conn.close()
    with Backend(closer, name="A") as a, Backend(name="B") as b, \
            start(conf=conf_for([a.url, b.url], max_fails=2, fail_timeout=1.5)) as e:
        got = [get(e.addr, f"/p{i}") for i in range(12)]
        check_eq(len(a.requests), 2, f"requests the failing backend got before being skipped "
                 f"(statuses {[r.status for r in got]})")
        from_b = [r.status for r in got if r.header("x-backend") == "B"]
        check_eq(from_b, [200] * len(from_b), "statuses from the good backend")
        time.sleep(1.7)
        for i in range(3):
            get(e.addr, f"/again{i}")
        check(len(a.requests) >= 3, f"the backend was not tried again after fail-timeout "
              f"({len(a.requests)} requests)")


def test_active_health_check():
    """health: a backend answering 503 to GET /health is avoided, and used
    again once it answers 200."""
    with Backend(name="A", health_status=200) as a, Backend(name="B", health_status=200) as b, \
            start(conf=conf_for([a.url, b.url], health="/health", health_interval=0.2)) as e:
        get(e.addr, "/first")   # (checks may wait for a first request: see the next test)
        check(a.wait(lambda: any(q.target == "/health" for q in a.requests), 3) and
              b.wait(lambda: any(q.target == "/health" for q in b.requests), 3),
              "no GET /health reached the backends within 3 s")
        hq = [q for q in a.requests if q.target == "/health"][0]
        check_eq(hq.method, "GET", "health check method")
        a.health_status = 503
        time.sleep(1.0)
        names = [get(e.addr, f"/d{i}").header("x-backend") for i in range(8)]
        check_eq(names, ["B"] * 8, "backends while A fails its health check")
        a.health_status = 200
        time.sleep(1.0)
        names = [get(e.addr, f"/u{i}").header("x-backend") for i in range(8)]
        check(names.count("A") >= 3, f"A not used again after passing its check: {names}")
        checks = len([q for q in a.requests if q.target == "/health"])
        check(4 <= checks <= 40, f"{checks} health checks in about 2.5 s at 0.2 s")


def test_active_health_checks_start_without_traffic():
    """Health checks run from the start, before any request: a backend
    failing its check gets no client request at all."""
    with Backend(name="A", health_status=503) as a, Backend(name="B", health_status=200) as b, \
            start(conf=conf_for([a.url, b.url], health="/health", health_interval=0.2)) as e:
        ok = a.wait(lambda: any(q.target == "/health" for q in a.requests), 2)
        check(ok, "no GET /health reached the backend within 2 s of start (with no request yet; "
              "health-interval 0.2)")
        time.sleep(0.5)
        names = [get(e.addr, f"/n{i}").header("x-backend") for i in range(4)]
        check_eq(names, ["B"] * 4, "backends of the first requests (A fails its checks)")


# ----------------------------------------------------------- 10. WebSocket --


class WSBackend:
    """A websockets echo server on its own thread and loop: says "hello"
    first, echoes every message, records headers and closes."""

    def __init__(self):
        self.requests = []
        self.closes = []
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        check(started.wait(5), "the WebSocket backend did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self, started):
        asyncio.set_event_loop(self.loop)

        async def go():
            self.server = await websockets.serve(self.handler, "127.0.0.1", 0, ping_interval=None,
                                                 max_size=None)
            self.port = self.server.sockets[0].getsockname()[1]
        self.loop.run_until_complete(go())
        started.set()
        self.loop.run_forever()

    async def handler(self, ws):
        self.requests.append((ws.path, list(ws.request_headers.raw_items())))
        try:
            await ws.send("hello")
            async for msg in ws:
                await ws.send(msg)
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            self.closes.append((ws.close_code, ws.close_reason, time.monotonic()))

    def close(self):
        async def stop():
            self.server.close()
            await asyncio.wait_for(self.server.wait_closed(), 3)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_websocket_echo():
    """A WebSocket through the proxy: the upgrade reaches the backend,
    messages go both ways byte-exact, and a close handshake completes."""
    need_websockets()
    big = rand_bytes(2 * MiB, "ws")
    with WSBackend() as w, start([("/", [w.url])]) as e:
        host, port = e.addr

        async def client():
            async with websockets.connect(f"ws://{host}:{port}/ws?x=1", ping_interval=None,
                                          max_size=None, open_timeout=5, close_timeout=3) as ws:
                got = [await asyncio.wait_for(ws.recv(), 5)]
                for msg in ("text ü", b"\x00\x01binary\xff", big):
                    await ws.send(msg)
                    got.append(await asyncio.wait_for(ws.recv(), 10))
                await ws.close(1000, "bye")
                return got, ws.close_code
        try:
            got, code = asyncio.run(asyncio.wait_for(client(), 10))
        except asyncio.TimeoutError:
            raise Failure(f"the WebSocket exchange did not finish in 10 s (the backend got "
                          f"{len(w.requests)} upgrade requests, saw closes {w.closes})")
        check_eq(got[:3], ["hello", "text ü", b"\x00\x01binary\xff"], "messages")
        check_eq((len(got[3]), sha(got[3])), (len(big), sha(big)), "a 2 MiB message echoed")
        check_eq(code, 1000, "client's close code")
        deadline = time.monotonic() + 3
        while not w.closes and time.monotonic() < deadline:
            time.sleep(0.02)
        check_eq([c[:2] for c in w.closes], [(1000, "bye")], "the backend's view of the close")
        path, headers = w.requests[0]
        names = {k.lower() for k, _ in headers}
        check_eq(path, "/ws?x=1", "path at the backend")
        check({"upgrade", "sec-websocket-key", "sec-websocket-version", "x-forwarded-for"} <= names,
              f"upgrade request fields at the backend: {headers}")


def test_websocket_tunnel_timeout():
    """tunnel-timeout: 1 closes a tunnel idle both ways."""
    need_websockets()
    with WSBackend() as w, start(conf=conf_for([w.url], tunnel_timeout=1)) as e:
        host, port = e.addr

        async def client():
            async with websockets.connect(f"ws://{host}:{port}/idle", ping_interval=None,
                                          open_timeout=5, close_timeout=1) as ws:
                await asyncio.wait_for(ws.recv(), 5)
                await ws.send("one")
                check_eq(await asyncio.wait_for(ws.recv(), 5), "one", "echo")
                t0 = time.monotonic()
                try:
                    msg = await asyncio.wait_for(ws.recv(), 6)
                    raise Failure(f"got {msg!r} on an idle tunnel")
                except websockets.exceptions.ConnectionClosed:
                    return time.monotonic() - t0
                except asyncio.TimeoutError:
                    raise Failure("the idle tunnel was still open after 6 s")
        took = asyncio.run(asyncio.wait_for(client(), 15))
        check(0.7 < took < 3.5, f"idle tunnel closed after {took:.2f} s, want about 1")
        deadline = time.monotonic() + 3
        while not w.closes and time.monotonic() < deadline:
            time.sleep(0.02)
        check(w.closes, "the backend's side of the tunnel was not closed")


def test_bad_proxy_flags_refused():
    """A --proxy eddy cannot use is refused at start: exit 2, one line
    naming --proxy."""
    wrong = []
    for val in ("noequals", "/=", "/=ftp://127.0.0.1:1", "/=http://127.0.0.1:1/path",
                "/=unix:relative.sock", "/=http://[::1", "/=http://127.0.0.1:99999",
                "/=http://127.0.0.1:1,,http://127.0.0.1:2"):
        p = subprocess.run([run.EDDY, "--listen", "127.0.0.1:0", "--proxy", val], capture_output=True,
                           timeout=5, stdin=subprocess.DEVNULL)
        err = p.stderr.decode(errors="replace")
        if p.returncode != 2 or "proxy" not in err:
            wrong.append(f"--proxy {val!r}: exit {p.returncode}, stderr {short(err, 120)}")
    check(not wrong, "; ".join(wrong))


# ------------------------------------------------------------ 11. shutdown --


def test_sigterm_finishes_proxied_request():
    """SIGTERM while a request is at the backend: it is answered, then eddy exits 0."""
    def handler(req, conn):
        conn.hold(1.0)
        return response(200, b"finished")
    with Backend(handler) as b, start(flag(b), shutdown=5, stop=False) as e, Client(e.addr) as c:
        c.send(request("GET", "/"))
        check(b.wait(lambda: b.requests, 2), "request did not reach the backend")
        e.srv.signal(signal.SIGTERM)
        r = c.read_response(timeout=6)
        check_eq((r.status, r.body), (200, b"finished"), "the request in flight")
        check_eq(e.srv.wait(6), 0, "exit status")
        check(not SANITIZER_RE.search(e.srv.stderr_text()), f"sanitizer: {short(e.srv.stderr_text(), 600)}")


def test_sigterm_closes_idle_backend_connections():
    """Kept-alive backend connections do not hold up SIGTERM, and are closed."""
    with Backend() as b, start(flag(b), shutdown=5, stop=False) as e:
        check_eq(get(e.addr, "/").status, 200, "status")
        took = e.stop()
        check(took < 2, f"eddy took {took:.2f} s to exit with only an idle backend connection")
        check(b.wait(lambda: b.conns[0].closed, 2), "backend connection left open")


# ------------------------------------------------------------------ main --

ORDER = [
    "request_reserialized", "methods_and_target_forms", "encoded_slash_kept",
    "pipelined_client_requests", "hop_by_hop_removed",
    "hop_by_hop_removed_from_response", "x_forwarded_set", "x_forwarded_trusted",
    "forwarded_rfc7239", "forwarded_ipv6_quoted", "forwarded_both_and_none",
    "forwarded_trusted_appended", "host_kept_or_rewritten", "strip_prefix",
    "request_body_content_length", "request_body_chunked", "response_body_content_length",
    "response_body_chunked", "response_close_delimited", "head_keeps_content_length",
    "status_204_304", "response_fields_date_server", "bad_response_framing_502",
    "bad_chunk_in_response_cuts", "backend_closes_before_response_502", "backend_refuses_502",
    "backend_never_answers_504", "connect_timeout_504", "all_backends_down_503",
    "down_backend_comes_back", "retry_idempotent_to_other_backend", "post_not_retried_after_body",
    "stale_keepalive_connection_retried", "keepalive_reuse",
    "idle_timeout_closes_backend_connection", "backend_dies_mid_body_content_length",
    "backend_dies_mid_body_chunked", "read_timeout_cuts_stalled_response",
    "slow_client_bounded_memory", "slow_backend_trickle", "response_streams_as_it_comes",
    "paused_backend_body_not_held",
    "request_body_streams", "expect_100_continue", "client_leaves_mid_request",
    "smuggling_body_is_one_request", "client_cl_and_te_refused", "concurrent_thousand",
    "http2_client", "tls_client", "unix_socket_backend", "ipv6_backend", "backend_by_name",
    "round_robin_alternates", "least_conn_prefers_idle", "max_conns_per_backend",
    "passive_health_skips_failing_backend", "active_health_check",
    "active_health_checks_start_without_traffic", "websocket_echo",
    "websocket_tunnel_timeout", "bad_proxy_flags_refused", "sigterm_finishes_proxied_request",
    "sigterm_closes_idle_backend_connections",
]


def all_tests():
    tests = {n[5:]: f for n, f in globals().items() if n.startswith("test_") and callable(f)}
    missing = set(tests) - set(ORDER)
    assert not missing, f"tests not in ORDER: {missing}"
    return [(n, tests[n]) for n in ORDER]


if __name__ == "__main__":
    if "--list" in sys.argv:
        print("\n".join(ORDER))
        sys.exit(0)
    sys.exit(run.main(tests=all_tests(), doc=__doc__, need_example=False, cleanup=cleanup,
                      timeouts={"concurrent_thousand": 45, "slow_client_bounded_memory": 45,
                                "websocket_echo": 30, "bad_response_framing_502": 40}))
