#!/usr/bin/env python3
"""Runs eddy's HTTP/1.1 conformance table (cases.txt) over real TCP sockets.

    python3 tests/conformance/run_table.py --eddy build/eddy
    python3 tests/conformance/run_table.py --target 127.0.0.1:8080 [--report]
    python3 tests/conformance/run_table.py --eddy build/eddy -k chunk

--eddy PATH starts that program (--listen 127.0.0.1:0 --root <repo>/www),
reads the port from its ready line and kills it at the end (and restarts it
for the remaining cases if it dies under one).  --target HOST:PORT talks to a
server that is already running.  Standard library only.

Each case gets a fresh connection.  Its request bytes are sent while the
responses are read (a server may answer a large request and close before
reading all of it; a failed send is tolerated and what came back is still
read).  Then:
  statuses  the codes of the responses read, interim ones included, must equal
            the table's;
  body      yes: the last response has content; no: it has none (the last
            response is read as to a HEAD request: a body is looked for only
            if bytes other than a next status line follow its head);
  conn      close: the server ends the connection (EOF or reset) within
            CLOSE_WAIT seconds with no further response;
            keep: "GET / HTTP/1.1" sent on the same connection gets a 200.

Output: one line per case, "name  ok" or "name  FAIL  <what differed>", then
exactly one line "N passed, N failed, N skipped" (no case is ever skipped:
the count is there so every suite's closing line reads alike); the exit
status is 1 if any failed.
--report prints instead a Markdown table of the cases where the server
differs from the table, and exits 0.
"""

import argparse
import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_TABLE = HERE / "cases.txt"

CONNECT_TIMEOUT = 2.0    # seconds to connect
RESPONSE_TIMEOUT = 2.0   # seconds for each expected response to arrive
CLOSE_WAIT = 3.0         # seconds for the server to end a 'close' connection
FOLLOW_UP_TIMEOUT = 1.5  # seconds for the answer to the keep-alive probe
HEAD_GRACE = 0.25        # seconds to see whether a HEAD-like response has a body
CASE_LIMIT = 10          # safety net: seconds after which a case is abandoned
START_TIMEOUT = 5.0      # seconds for eddy's ready line
MAX_HEAD = 65536         # largest response head accepted
MAX_BODY = 16 << 20      # largest response body accepted

FOLLOW_UP = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
READY_RE = re.compile(r"^eddy listening on http://(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)/$")
STATUS_RE = re.compile(rb"^HTTP/(\d)\.(\d) (\d{3})(?: [^\r\n]*)?$")


# ------------------------------------------------------------------ table --


class TableError(Exception):
    pass


class Case:
    def __init__(self, name, statuses, conn, body, request, lineno):
        self.name = name
        self.statuses = statuses    # [int]
        self.conn = conn            # "keep" | "close"
        self.body = body            # "yes" | "no" | "-"
        self.request = request      # bytes
        self.lineno = lineno

    @property
    def finals(self):
        return sum(1 for s in self.statuses if s >= 200)


_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}
_HEX2 = re.compile(r"[0-9a-fA-F]{2}")
_REPEAT = re.compile(r"\{(\d+)\*([^{}]*)\}")


def decode_escapes(text, where):
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1:i + 2]
            if nxt in _ESCAPES and nxt:
                out += _ESCAPES[nxt]
                i += 2
            elif nxt == "x" and _HEX2.fullmatch(text[i + 2:i + 4]):
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
            else:
                raise TableError(f"{where}: bad escape {text[i:i + 4]!r}")
        else:
            out += c.encode("utf-8")
            i += 1
    return bytes(out)


def decode_request(text, where):
    """The request field's bytes: escapes decoded, {N*TEXT} expanded.  As in
    tests/unit/test_conformance.c, a brace that does not open {N*TEXT} is a
    literal brace."""
    out = bytearray()
    pos = 0
    for m in _REPEAT.finditer(text):
        out += decode_escapes(text[pos:m.start()], where)
        out += decode_escapes(m.group(2), where) * int(m.group(1))
        pos = m.end()
    out += decode_escapes(text[pos:], where)
    return bytes(out)


def load_table(path):
    cases = []
    seen = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{path}:{lineno}"
            parts = line.split(" | ", 4)
            if len(parts) != 5:
                raise TableError(f"{where}: expected 5 fields separated by ' | ', "
                                 f"got {len(parts)}")
            name, statuses, conn, body, request = parts
            name, conn, body = name.strip(), conn.strip(), body.strip()
            if not name or name in seen:
                raise TableError(f"{where}: missing or duplicate name {name!r}")
            seen.add(name)
            try:
                codes = [int(s) for s in statuses.split()]
            except ValueError:
                codes = []
            if (not codes or any(not 100 <= c <= 599 for c in codes)
                    or codes[-1] < 200):
                raise TableError(f"{where}: bad statuses {statuses.strip()!r} "
                                 f"(three-digit codes, the last a final one)")
            if conn not in ("keep", "close"):
                raise TableError(f"{where}: conn must be keep or close, not {conn!r}")
            if body not in ("yes", "no", "-"):
                raise TableError(f"{where}: body must be yes, no or -, not {body!r}")
            if request != request.strip(" \t"):
                raise TableError(f"{where}: request has unescaped leading or trailing "
                                 f"whitespace (write \\x20 or \\t)")
            cases.append(Case(name, codes, conn, body, decode_request(request, where),
                              lineno))
    return cases


# ------------------------------------------------------------- the socket --


class Timeout(Exception):
    """Nothing (more) arrived before the deadline."""


class Closed(Exception):
    """The server ended the connection (EOF or reset)."""


class BadResponse(Exception):
    """Bytes that are not an HTTP/1.x response."""


class Peer:
    """One client connection: sends its output whenever the socket takes it
    while input is read into a buffer, so neither side can block the other."""

    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=CONNECT_TIMEOUT)
        self.sock.setblocking(False)
        self.out = memoryview(b"")
        self.buf = bytearray()
        self.ended = None        # None, "eof" or "reset"
        self.send_error = None   # why sending stopped early, if it did
        self.partial = None      # status of a response whose head is read, not its body

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data):
        self.out = memoryview(bytes(self.out) + data)
        self._flush()

    def _flush(self):
        while self.out and self.send_error is None:
            try:
                n = self.sock.send(self.out[:262144])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:   # EPIPE, ECONNRESET: the server stopped reading
                self.send_error = f"{type(e).__name__} after sending some bytes"
                self.out = memoryview(b"")
                return
            self.out = self.out[n:]

    def pump(self, deadline):
        """Waits for new input or the end of the connection, sending pending
        output meanwhile.  Returns False on reaching the deadline (or if the
        connection had already ended), True otherwise."""
        while self.ended is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            wlist = [self.sock] if self.out and self.send_error is None else []
            r, w, _ = select.select([self.sock], wlist, [], left)
            if w:
                self._flush()
            if not r:
                continue
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionResetError:
                self.ended = "reset"
                return True
            except OSError as e:
                self.ended = f"reset ({e.strerror})"
                return True
            if not data:
                self.ended = "eof"
                return True
            self.buf += data
            return True
        return False

    def _wait(self, deadline, what):
        if not self.pump(deadline):
            if self.ended:
                raise Closed(what)
            raise Timeout(what)

    def line(self, deadline, what, limit=MAX_HEAD):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buf) > limit:
                raise BadResponse(f"{what}: no end of line in {short(self.buf)}")
            self._wait(deadline, what)

    def exact(self, n, deadline, what):
        while len(self.buf) < n:
            self._wait(deadline, what)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def rest(self, deadline, what):
        """Everything up to the end of the connection (a close-delimited body)."""
        while self.ended is None:
            if len(self.buf) > MAX_BODY:
                raise BadResponse(f"{what}: more than {MAX_BODY} bytes")
            self._wait(deadline, what)
        data = bytes(self.buf)
        self.buf.clear()
        return data


def short(data, n=80):
    r = repr(bytes(data))
    return r if len(r) <= n else r[:n] + "..."


class Response:
    def __init__(self, status, fields, body, close_delimited=False, stray_body=False):
        self.status = status
        self.fields = fields          # [(lowercase name, value)]
        self.body = body
        self.close_delimited = close_delimited
        self.stray_body = stray_body  # read as to HEAD, yet a body followed

    def field(self, name):
        return [v for k, v in self.fields if k == name]


def read_response(peer, deadline, head_like=False):
    """Reads one response.  head_like: a final response read as the answer to
    HEAD (no body unless one visibly follows the head)."""
    line = peer.line(deadline, "status line")
    m = STATUS_RE.match(line)
    if not m or m.group(1) != b"1":
        raise BadResponse(f"not a status line: {short(line)}")
    status = int(m.group(3))
    peer.partial = status
    fields = []
    size = 0
    while True:
        fl = peer.line(deadline, f"fields of the {status} response")
        size += len(fl)
        if size > MAX_HEAD:
            raise BadResponse(f"head of the {status} response exceeds {MAX_HEAD} bytes")
        if not fl:
            break
        if fl[:1] in (b" ", b"\t") or b":" not in fl:
            raise BadResponse(f"bad field line in the {status} response: {short(fl)}")
        k, v = fl.split(b":", 1)
        fields.append((k.decode("latin-1").lower(), v.strip(b" \t").decode("latin-1")))
    resp = Response(status, fields, b"")
    resp_body(peer, resp, deadline, head_like)
    peer.partial = None
    return resp


def resp_body(peer, resp, deadline, head_like):
    status = resp.status
    if status < 200 or status in (204, 304):
        return

    te = ",".join(resp.field("transfer-encoding")).lower()
    chunked = te.replace(" ", "").split(",")[-1] == "chunked" if te else False
    cls = resp.field("content-length")
    length = None
    if not chunked and cls:
        vals = {v.strip() for c in cls for v in c.split(",")}
        if len(vals) != 1 or not next(iter(vals)).isdigit():
            raise BadResponse(f"bad Content-Length in the {status} response: {cls}")
        length = int(next(iter(vals)))
        if length > MAX_BODY:
            raise BadResponse(f"Content-Length {length} too large")

    if head_like:
        if not chunked and not length:
            return
        # A HEAD response announces a length it does not send.  Look briefly:
        # bytes that are not the start of a next response are a stray body.
        peer.pump(min(deadline, time.monotonic() + HEAD_GRACE))
        if not peer.buf or bytes(peer.buf[:5]) == b"HTTP/"[:len(peer.buf)]:
            return
        resp.stray_body = True

    what = f"body of the {status} response"
    if chunked:
        body = bytearray()
        while True:
            sl = peer.line(deadline, what)
            hexpart = sl.split(b";", 1)[0].strip(b" \t")
            if not re.fullmatch(rb"[0-9a-fA-F]{1,15}", hexpart):
                raise BadResponse(f"bad chunk size line {short(sl)}")
            n = int(hexpart, 16)
            if len(body) + n > MAX_BODY:
                raise BadResponse("chunked body too large")
            if n == 0:
                while peer.line(deadline, "trailer section"):
                    pass
                break
            body += peer.exact(n, deadline, what)
            if peer.line(deadline, what):
                raise BadResponse("chunk data longer than its size")
        resp.body = bytes(body)
    elif length is not None:
        resp.body = peer.exact(length, deadline, what)
    else:
        resp.body = peer.rest(deadline, what)
        resp.close_delimited = True


# ---------------------------------------------------------------- a case --


class Outcome:
    """What a server did with one case."""

    def __init__(self):
        self.statuses = []
        self.conn = None      # keep, close, open, timeout, malformed, error, or
                              # "keep (GET / answered N)"
        self.last = None      # the last Response read
        self.notes = []       # details for a failure message
        self.malformed = ""   # what was wrong with a malformed response

    def got(self, with_body=False):
        st = " ".join(map(str, self.statuses))
        if self.conn == "timeout" and not st:
            text = "timeout"
        elif not st:
            text = f"no response, {self.conn}"
        else:
            text = f"{st} {self.conn}"
        if self.malformed:
            text += f" (`{self.malformed}`)"
        if with_body:
            text += " + body" if self.has_body() else ", no body"
        return text

    def has_body(self):
        return bool(self.last is not None and (self.last.body or self.last.stray_body))


def conn_status(peer, deadline, out, what):
    """Reads (extra) responses until the connection ends or the deadline.
    Returns True if the connection ended, False on a quiet deadline."""
    while True:
        if not peer.buf:
            if not peer.pump(deadline):
                if peer.ended:
                    return True
                return False
            if peer.ended and not peer.buf:
                return True
            continue
        try:
            r = read_response(peer, deadline)
        except Closed:
            out.notes.append(f"{what}: connection ended inside a partial response "
                             f"{short(peer.buf)}")
            return True
        except Timeout:
            out.notes.append(f"{what}: partial response {short(peer.buf)}")
            return False
        out.statuses.append(r.status)
        out.last = r
        out.notes.append(f"{what}: a further {r.status} response")


def follow_up(peer, out):
    """Sends the keep-alive probe; sets out.conn to keep, close, open or the
    probe's status."""
    peer.send(FOLLOW_UP)
    deadline = time.monotonic() + FOLLOW_UP_TIMEOUT
    try:
        r = read_response(peer, deadline)
    except Closed:
        out.conn = "close"
        return
    except Timeout:
        out.conn = "open"
        out.notes.append(f"GET / sent on the connection got no answer within "
                         f"{FOLLOW_UP_TIMEOUT} s")
        return
    except BadResponse as e:
        out.conn = "malformed"
        out.malformed = f"answer to GET /: {e}"
        out.notes.append(f"answer to GET / sent on the connection: {e}")
        return
    if r.status == 200:
        out.conn = "keep"
    else:
        out.conn = f"keep (GET / answered {r.status})"
        out.notes.append(f"GET / sent on the connection was answered {r.status}, not 200")


def run_case(case, addr):
    out = Outcome()
    try:
        peer = Peer(addr)
    except OSError as e:
        out.conn = "error"
        out.notes.append(f"cannot connect to {addr[0]}:{addr[1]}: {e}")
        return out
    try:
        peer.send(case.request)
        finals = 0
        try:
            while finals < case.finals:
                head_like = case.body == "no" and finals + 1 == case.finals
                deadline = time.monotonic() + RESPONSE_TIMEOUT
                r = read_response(peer, deadline, head_like=head_like)
                out.statuses.append(r.status)
                out.last = r
                if r.status >= 200:
                    finals += 1
        except (Timeout, Closed, BadResponse) as e:
            if peer.partial is not None:    # its head came, not all of its body
                out.statuses.append(peer.partial)
            if isinstance(e, Timeout):
                out.conn = "timeout"
                out.notes.append(f"no complete response within {RESPONSE_TIMEOUT} s "
                                 f"(waiting for the {e}; "
                                 f"{'nothing more' if not peer.buf else short(peer.buf)} "
                                 f"received)")
            elif isinstance(e, Closed):
                out.conn = "close"
                if peer.buf or out.statuses:
                    out.notes.append(f"connection ended ({peer.ended}) while reading the {e}"
                                     + (f"; left: {short(peer.buf)}" if peer.buf else ""))
                else:
                    out.notes.append(f"connection ended ({peer.ended}) with no response")
            else:
                out.conn = "malformed"
                out.malformed = str(e)
                out.notes.append(f"malformed response: {e}")
        if out.conn is not None:
            return out

        # All listed responses read: now what happens to the connection?
        # Bytes already there, or an end already seen, are looked at first:
        # they are an unlisted response or the close.
        if out.last.close_delimited:
            out.conn = "close"
        elif case.conn == "close" or peer.buf or peer.ended:
            wait = CLOSE_WAIT if case.conn == "close" else 0.5
            if conn_status(peer, time.monotonic() + wait, out, "after the last listed"):
                out.conn = "close"
            elif case.conn == "keep":
                follow_up(peer, out)
            elif peer.buf:
                out.conn = "open"
                out.notes.append(f"connection not ended within {CLOSE_WAIT} s")
            else:
                # Still open: find out whether it would serve another request.
                follow_up(peer, out)
                if out.conn == "close":
                    out.conn = "open"
                    out.notes.append(f"connection not ended within {CLOSE_WAIT} s "
                                     f"(only once GET / was sent on it)")
                else:
                    out.notes.append(f"connection not ended within {CLOSE_WAIT} s")
        else:
            follow_up(peer, out)
        if peer.send_error:
            out.notes.append(f"sending the request stopped early: {peer.send_error}")
        return out
    finally:
        peer.close()


def differences(case, out):
    """[str]: how out differs from the case; empty if it conforms."""
    diffs = []
    want = " ".join(map(str, case.statuses))
    got = " ".join(map(str, out.statuses)) or "none"
    if out.statuses != case.statuses:
        diffs.append(f"statuses: expected {want}, got {got}")
    if out.conn != case.conn:
        diffs.append(f"connection: expected {case.conn}, got {out.conn}")
    if out.statuses == case.statuses and case.body != "-":
        has = out.has_body()
        if case.body == "yes" and not has:
            diffs.append(f"body: expected content in the {case.statuses[-1]} response, "
                         f"got none")
        elif case.body == "no" and has:
            n = len(out.last.body)
            diffs.append(f"body: expected none in the {case.statuses[-1]} response, "
                         f"got {f'{n} bytes' if n else 'some'}")
    return diffs


# ---------------------------------------------------------------- servers --


def _die_with_runner():
    """In eddy, before exec: be SIGKILLed if this runner dies (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


class Eddy:
    """eddy started by this runner on 127.0.0.1, port 0."""

    def __init__(self, path):
        self.path = path
        self.proc = None
        self.addr = None
        self.errfile = None

    def start(self):
        argv = [self.path, "--listen", "127.0.0.1:0", "--root", str(REPO / "www")]
        # stderr goes to a file, so that however much eddy logs it never
        # blocks on a full pipe; stdout is drained after the ready line.
        self.errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.errfile, cwd=str(REPO),
                                     preexec_fn=_die_with_runner)
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + START_TIMEOUT
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise RuntimeError(f"no ready line from eddy within {START_TIMEOUT} s")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    err = self.stop()
                    raise RuntimeError(f"eddy exited with status {self.proc.returncode} "
                                       f"before its ready line: {err.strip()}")
                buf += chunk
        line = buf.split(b"\n", 1)[0].decode(errors="replace")
        m = READY_RE.match(line)
        if not m:
            self.stop()
            raise RuntimeError(f"unexpected ready line from eddy: {line!r}")
        self.addr = (m.group(1).strip("[]"), int(m.group(2)))
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()

    @staticmethod
    def _drain(f):
        with contextlib.suppress(Exception):
            while f.read(65536):
                pass

    def died(self):
        """None while eddy runs, else a description of how it ended."""
        if self.proc is None or self.proc.poll() is None:
            return None
        rc = self.proc.returncode
        how = f"killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
        return how

    def stop(self):
        """Kills eddy (by its own pid) and returns what it wrote on stderr."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        err = b""
        with contextlib.suppress(Exception):
            self.errfile.seek(0)
            err = self.errfile.read()
            self.errfile.close()
        return err.decode(errors="replace")


def parse_target(text):
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\[\]]+):(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT or [IPV6]:PORT, not {text!r}")
    host = m.group(1) or m.group(3)
    return host, int(m.group(2) or m.group(4))


# ------------------------------------------------------------------- main --


class CaseTooLong(Exception):
    pass


def on_alarm(signum, frame):
    raise CaseTooLong(f"case took longer than {CASE_LIMIT} s")


def on_terminate(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def md(text):
    return text.replace("|", "\\|")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--eddy", metavar="PATH", help="start this eddy and test it")
    who.add_argument("--target", metavar="HOST:PORT", type=parse_target,
                     help="test a server already listening there")
    ap.add_argument("--table", metavar="FILE", default=str(DEFAULT_TABLE),
                    help="the conformance table (default: cases.txt beside this script)")
    ap.add_argument("-k", dest="only", metavar="WORD",
                    help="run only cases whose name contains WORD")
    ap.add_argument("--report", action="store_true",
                    help="print a Markdown table of the cases where the server differs; exit 0")
    opts = ap.parse_args()

    def setup_failed(msg):
        print(f"run_table: {msg}", file=sys.stderr, flush=True)
        if not opts.report:
            print("0 passed, 1 failed, 0 skipped", flush=True)
        return 1

    try:
        cases = load_table(opts.table)
    except (OSError, TableError) as e:
        return setup_failed(e)
    if opts.only:
        cases = [c for c in cases if opts.only in c.name]

    signal.signal(signal.SIGTERM, on_terminate)
    signal.signal(signal.SIGHUP, on_terminate)
    signal.signal(signal.SIGALRM, on_alarm)

    eddy = None
    if opts.eddy:
        path = str(Path(opts.eddy).resolve())
        if not os.access(path, os.X_OK):
            return setup_failed(f"{path}: not an executable (run make all)")
        eddy = Eddy(path)

    passed = failed = 0
    differing = []   # (case, outcome) for --report
    t0 = time.monotonic()
    try:
        if eddy:
            eddy.start()
            addr = eddy.addr
        else:
            addr = opts.target
        width = max((len(c.name) for c in cases), default=0)
        for case in cases:
            signal.alarm(CASE_LIMIT)
            try:
                out = run_case(case, addr)
                diffs = differences(case, out)
            except CaseTooLong as e:
                out = Outcome()
                out.conn = "timeout"
                diffs = [str(e)]
            finally:
                signal.alarm(0)
            if eddy and eddy.died():
                how = eddy.died()
                err = eddy.stop().strip()
                diffs.append(f"eddy {how}" + (f" (stderr: {err[-300:]})" if err else ""))
                eddy.start()          # a fresh eddy for the remaining cases
                addr = eddy.addr
            if opts.report:
                if diffs:
                    differing.append((case, out, diffs))
                continue
            if diffs:
                failed += 1
                detail = "; ".join(diffs + [n for n in out.notes if n not in diffs])
                print(f"{case.name:<{width}}  FAIL  {detail}", flush=True)
            else:
                passed += 1
                print(f"{case.name:<{width}}  ok", flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        if not opts.report:
            print(f"{passed} passed, {failed + 1} failed, 0 skipped", flush=True)
        return 1
    except RuntimeError as e:
        print(f"run_table: {e}", file=sys.stderr, flush=True)
        if not opts.report:
            print(f"{passed} passed, {failed + 1} failed, 0 skipped", flush=True)
        return 1
    finally:
        if eddy:
            eddy.stop()
    took = time.monotonic() - t0

    if opts.report:
        print("| case | expected | got |")
        print("|---|---|---|")
        for case, out, diffs in differing:
            body_differs = any(d.startswith("body:") for d in diffs)
            want = f"{' '.join(map(str, case.statuses))} {case.conn}"
            if body_differs:
                want += " + body" if case.body == "yes" else ", no body"
            print(f"| {md(case.name)} | {md(want)} | {md(out.got(with_body=body_differs))} |")
        print()
        print(f"{len(differing)} of {len(cases)} cases differ from the table "
              f"({len(cases) - len(differing)} conform; {took:.1f} s)")
        print()
        print(f"*keep*: GET / sent afterwards on the same connection got a 200; "
              f"*close*: EOF or reset within {CLOSE_WAIT:g} s of the last response; "
              f"*open*: neither closed within {CLOSE_WAIT:g} s nor answered a GET / sent "
              f"afterwards; *timeout*: no complete response within {RESPONSE_TIMEOUT:g} s.")
        return 0
    print(f"{passed} passed, {failed} failed, 0 skipped", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
