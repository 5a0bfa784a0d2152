#!/usr/bin/env python3
"""Integration tests for eddy's HTTP/2 (RFC 9113): h2c with prior knowledge
and h2 over TLS by ALPN, every handler over HTTP/2, flow control, header
validation, limits and floods, graceful shutdown, and real clients (curl,
nghttp, h2load).

    python3 tests/integration/h2.py --eddy build/eddy
    python3 tests/integration/h2.py --eddy build/eddy -k flood
    python3 tests/integration/h2.py --eddy build/eddy --eddy-arg=--no-io-uring

Same harness, output and exit status as run.py and tls.py (whose helpers
this reuses).  Frames are built and read by hand (hyperframe for the
frame layout, hpack for header blocks, both Debian packages under
python3-h2), so a test can send exactly the malformed or hostile sequence
it is about, and check exactly which frame comes back.
"""

import contextlib
import hashlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402
import tls  # noqa: E402
from run import Failure, Skip, SocketOwner, check, check_eq, short, INDEX_HTML, WWW  # noqa: E402

try:
    import hpack
    from hyperframe import frame as hf
except ImportError:   # every test says SKIP
    hpack = hf = None

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
IO_TIMEOUT = 10
MiB = 1024 * 1024
# Error codes (RFC 9113 §7).
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x3
REFUSED_STREAM, ENHANCE_YOUR_CALM, COMPRESSION_ERROR = 0x7, 0xb, 0x9
# Settings.
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6


def need_h2():
    if hf is None:
        raise Skip("python3-h2 (hyperframe, hpack) is not installed; make test installs it")


class Closed(Exception):
    pass


class H2(SocketOwner):
    """A client connection speaking frames: sends what a test builds, reads
    and records what eddy sends back (SETTINGS are acknowledged, header
    blocks decoded, DATA answered with WINDOW_UPDATE unless told not to)."""

    def __init__(self, addr, secure=False, settings=None, auto_window=True, preface=True):
        need_h2()
        sock = socket.create_connection(addr, timeout=IO_TIMEOUT)
        if secure:
            ctx = tls.client_ctx(verify=False, alpn=["h2", "http/1.1"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
            check_eq(sock.selected_alpn_protocol(), "h2", "ALPN")
        self.sock = sock
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.auto_window = auto_window
        self.server_settings = {}
        self.settings_acked = False
        self.streams = {}        # id -> {"headers", "data", "ended", "reset", "trailers"}
        self.goaway = None       # (last_stream_id, error_code)
        self.closed = False
        self.frames = []         # every frame received, in order
        self.next_id = 1
        self.conn_window = 65535          # what eddy lets us send
        self.stream_windows = {}
        if preface:
            self.sock.sendall(PREFACE)
            self.send(hf.SettingsFrame(0, settings=settings or {}))

    _corked = None   # bytes held by corked(), else None

    def send(self, *frames):
        data = b"".join(f.serialize() if hasattr(f, "serialize") else f for f in frames)
        if self._corked is not None:
            self._corked.append(data)
        else:
            self.sock.sendall(data)

    @contextlib.contextmanager
    def corked(self):
        """Frames sent inside leave in one write when it ends, so the
        server reads them together (as a browser's requests often come)."""
        self._corked = []
        try:
            yield
        finally:
            data, self._corked = b"".join(self._corked), None
            self.sock.sendall(data)

    def block(self, headers):
        """An HPACK block for [(name, value)] as given: no lowercasing,
        no checks, so a test can send what a client must not."""
        return self.enc.encode([(n.encode() if isinstance(n, str) else n,
                                 v.encode() if isinstance(v, str) else v) for n, v in headers])

    def headers(self, sid, headers, end_stream=True, end_headers=True):
        flags = (["END_STREAM"] if end_stream else []) + (["END_HEADERS"] if end_headers else [])
        self.send(hf.HeadersFrame(sid, data=self.block(headers), flags=flags))

    def request(self, path="/", method="GET", extra=(), end_stream=True, authority="localhost",
                scheme="http"):
        sid = self.next_id
        self.next_id += 2
        hdrs = [(":method", method), (":scheme", scheme), (":path", path)]
        if authority is not None:
            hdrs.append((":authority", authority))
        self.headers(sid, hdrs + list(extra), end_stream=end_stream)
        return sid

    def data(self, sid, payload, end_stream=False):
        self.send(hf.DataFrame(sid, data=payload, flags=["END_STREAM"] if end_stream else []))

    def stream_window(self, sid):
        return self.stream_windows.get(sid, self.server_settings.get(S_INITIAL_WINDOW_SIZE, 65535))

    def send_body(self, sid, body, end_stream=True, timeout=IO_TIMEOUT):
        """Sends body as eddy's windows allow, reading its WINDOW_UPDATEs."""
        sent = 0
        while sent < len(body):
            n = min(self.conn_window, self.stream_window(sid), 16384, len(body) - sent)
            if n <= 0:
                self.wait(lambda: min(self.conn_window, self.stream_window(sid)) > 0,
                          "a window to send into", timeout)
                continue
            last = sent + n == len(body)
            self.data(sid, body[sent:sent + n], end_stream=end_stream and last)
            self.conn_window -= n
            self.stream_windows[sid] = self.stream_window(sid) - n
            sent += n

    def stream(self, sid):
        return self.streams.setdefault(sid, {"headers": None, "data": b"", "ended": False,
                                             "reset": None, "trailers": None})

    def _parse(self):
        while len(self.buf) >= 9:
            f, length = hf.Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                return
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            self._take(f)

    def _take(self, f):
        self.frames.append(f)
        if isinstance(f, hf.SettingsFrame):
            if "ACK" in f.flags:
                self.settings_acked = True
            else:
                self.server_settings.update(f.settings)
                self.send(hf.SettingsFrame(0, flags=["ACK"]))
        elif isinstance(f, (hf.HeadersFrame, hf.ContinuationFrame)):
            st = self.stream(f.stream_id)
            st.setdefault("block", b"")
            st["block"] += f.data
            if "END_HEADERS" in f.flags:
                hdrs = [(n.decode(), v.decode()) for n, v in self.dec.decode(st.pop("block"), raw=True)]
                if st["headers"] is None or st["headers"][0][1].startswith("1"):
                    st["headers"] = hdrs
                else:
                    st["trailers"] = hdrs
            if "END_STREAM" in f.flags:
                st["ended"] = True
        elif isinstance(f, hf.DataFrame):
            st = self.stream(f.stream_id)
            st["data"] += f.data
            if "END_STREAM" in f.flags:
                st["ended"] = True
            n = f.flow_controlled_length
            if self.auto_window and n:
                self.send(hf.WindowUpdateFrame(0, window_increment=n))
                if not st["ended"]:
                    self.send(hf.WindowUpdateFrame(f.stream_id, window_increment=n))
        elif isinstance(f, hf.WindowUpdateFrame):
            if f.stream_id == 0:
                self.conn_window += f.window_increment
            else:
                self.stream_windows[f.stream_id] = self.stream_window(f.stream_id) + f.window_increment
        elif isinstance(f, hf.RstStreamFrame):
            self.stream(f.stream_id)["reset"] = f.error_code
        elif isinstance(f, hf.GoAwayFrame):
            self.goaway = (f.last_stream_id, f.error_code)
        elif isinstance(f, hf.PingFrame) and "ACK" not in f.flags:
            self.send(hf.PingFrame(0, opaque_data=f.opaque_data, flags=["ACK"]))

    def read_some(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r and not (hasattr(self.sock, "pending") and self.sock.pending()):
            return False
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed()
        self.buf += chunk
        self._parse()
        return True

    def wait(self, pred, what, timeout=IO_TIMEOUT):
        """Reads until pred() holds; Failure on timeout or a close first."""
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"timed out waiting for {what}")
            try:
                self.read_some(min(left, 0.5))
            except Closed:
                if pred():
                    return
                raise Failure(f"connection closed while waiting for {what} (goaway {self.goaway})")

    def response(self, sid, timeout=IO_TIMEOUT):
        st = self.stream(sid)
        self.wait(lambda: st["ended"] or st["reset"] is not None, f"the end of stream {sid}", timeout)
        return st

    def wait_closed(self, what, timeout=IO_TIMEOUT):
        """Reads until eddy closes the connection."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"connection still open: {what}")
            try:
                self.read_some(min(left, 0.5))
            except Closed:
                return
            except OSError:
                return


def hdr(st, name):
    for n, v in st["headers"] or []:
        if n == name:
            return v
    return None


def status(st):
    return hdr(st, ":status")


def check_status(st, want, what):
    check(st["reset"] is None, f"{what}: stream reset with code {st['reset']}")
    check_eq(status(st), str(want), f"{what}: status")


@contextlib.contextmanager
def start(*args, root=WWW, secure=False):
    """eddy on a plain port (or a TLS one) with these flags; stopped with
    SIGTERM at the end of a passing test, which wants exit status 0 and no
    sanitizer report."""
    need_h2()
    if secure:
        with tls.start_tls(*args, root=root) as srv:
            yield srv
        return
    with run.start_eddy("--shutdown-timeout", "5", *args, root=root) as srv:
        yield srv
        if srv.alive():
            srv.signal(signal.SIGTERM)
            code = srv.wait(15)
            err = srv.stderr_text()
            check(not tls.SANITIZER_RE.search(err), f"sanitizer report: {short(err, 600)}")
            check_eq(code, 0, f"exit status after SIGTERM (stderr: {short(err, 300)})")


@contextlib.contextmanager
def temp_root(files):
    d = Path(tempfile.mkdtemp(prefix="eddy-h2-"))
    try:
        for name, data in files.items():
            (d / name).write_bytes(data)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------- basics --

def test_prior_knowledge_get_index():
    """h2c: the preface on a plain port starts HTTP/2; GET / answers the
    index with lowercase fields, server, date and content-length, and
    eddy's SETTINGS say its limits."""
    with start() as srv, H2(srv.addr) as c:
        st = c.response(c.request("/"))
        check_status(st, 200, "GET /")
        check_eq(st["data"], INDEX_HTML, "body")
        check_eq(hdr(st, "content-length"), str(len(INDEX_HTML)), "content-length")
        check_eq(hdr(st, "server"), "eddy", "server")
        check(hdr(st, "date"), "a date field")
        check(all(n == n.lower() for n, _ in st["headers"]), f"lowercase names: {st['headers']}")
        check_eq(c.server_settings.get(S_MAX_CONCURRENT_STREAMS), 100, "SETTINGS_MAX_CONCURRENT_STREAMS")
        check_eq(c.server_settings.get(S_ENABLE_PUSH), 0, "SETTINGS_ENABLE_PUSH")
        c.wait(lambda: c.settings_acked, "the ACK of our SETTINGS")


def test_alpn_h2_over_tls():
    """ALPN picks h2 when offered (before http/1.1), and the same requests
    work over it; a client offering only http/1.1 still gets HTTP/1.1."""
    with start(secure=True) as srv:
        with H2(srv.addr, secure=True) as c:
            st = c.response(c.request("/", scheme="https"))
            check_status(st, 200, "GET / over h2")
            check_eq(st["data"], INDEX_HTML, "body")
        rc, text = tls.s_client(srv.addr, "-alpn", "http/1.1")
        check(rc == 0 and "ALPN protocol: http/1.1" in text, f"s_client -alpn http/1.1: {short(text, 300)}")


def test_no_http2_flag():
    """--no-http2: the preface is answered as HTTP/1.1 answers an unknown
    version (505), and ALPN never picks h2."""
    with start("--no-http2") as srv:
        resp = run.raw_request(srv.addr, PREFACE)
        check_eq(resp.status, 505, "the preface without HTTP/2")
    with start("--no-http2", secure=True) as srv:
        rc, text = tls.s_client(srv.addr, "-alpn", "h2,http/1.1")
        check(rc == 0 and "ALPN protocol: http/1.1" in text, f"s_client: {short(text, 300)}")


def test_preface_after_a_request_is_505():
    """The preface is HTTP/2 only as a connection's first bytes."""
    with start() as srv:
        with run.RawConn(srv.addr) as conn:
            conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" + PREFACE)
            check_eq(conn.read_response().status, 200, "the request before")
            check_eq(conn.read_response().status, 505, "the preface after it")


def test_bad_preface_closes():
    """A preface that goes wrong after its request line ends the connection
    (nghttp2 checks the rest), and eddy serves on."""
    with start() as srv:
        s = socket.create_connection(srv.addr, timeout=IO_TIMEOUT)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
        got = tls.read_until_closed(s, IO_TIMEOUT) if hasattr(tls, "read_until_closed") else s.recv(100)
        s.close()
        check(b"HTTP/1.1" not in got, f"an HTTP/1.1 answer to a broken preface: {short(got)}")
        with H2(srv.addr) as c:
            check_status(c.response(c.request("/")), 200, "a request afterwards")


def test_head_not_found_and_method():
    """HEAD: headers only, END_STREAM on HEADERS, content-length kept; a
    missing file 404 with eddy's page; POST to files 405 with allow."""
    with start() as srv, H2(srv.addr) as c:
        st = c.response(c.request("/", method="HEAD"))
        check_status(st, 200, "HEAD /")
        check_eq(st["data"], b"", "HEAD body")
        check_eq(hdr(st, "content-length"), str(len(INDEX_HTML)), "HEAD content-length")
        st = c.response(c.request("/nope.txt"))
        check_status(st, 404, "GET /nope.txt")
        st = c.response(c.request("/", method="POST"))
        check_status(st, 405, "POST /")
        check(hdr(st, "allow"), f"allow field: {st['headers']}")


def test_range_and_conditional():
    """Ranges (one, and multipart) and If-None-Match work over HTTP/2."""
    with start() as srv, H2(srv.addr) as c:
        st = c.response(c.request("/", extra=[("range", "bytes=0-9")]))
        check_status(st, 206, "a range")
        check_eq(st["data"], INDEX_HTML[:10], "the range's bytes")
        st = c.response(c.request("/", extra=[("range", "bytes=0-1,5-7")]))
        check_status(st, 206, "two ranges")
        check(hdr(st, "content-type").startswith("multipart/byteranges"), "multipart")
        check(INDEX_HTML[:2] in st["data"] and INDEX_HTML[5:8] in st["data"], "both parts")
        etag = hdr(c.response(c.request("/")), "etag")
        st = c.response(c.request("/", extra=[("if-none-match", etag)]))
        check_status(st, 304, "If-None-Match")
        check_eq(st["data"], b"", "304 body")


def test_many_streams_at_once():
    """50 streams opened together are all answered on one connection."""
    with start() as srv, H2(srv.addr) as c:
        ids = [c.request("/") for _ in range(50)]
        for sid in ids:
            st = c.response(sid)
            check_status(st, 200, f"stream {sid}")
            check_eq(st["data"], INDEX_HTML, f"stream {sid} body")


def test_slow_stream_does_not_hold_others():
    """The seed's point on one connection: a delayed stream does not hold
    up the one after it."""
    with start("--delay", "/sleep=1") as srv, H2(srv.addr) as c:
        slow = c.request("/sleep")
        t0 = time.monotonic()
        fast = c.request("/")
        c.response(fast)
        check(time.monotonic() - t0 < 0.8, "/ waited for /sleep")
        check(not c.stream(slow)["ended"], "/sleep answered early")
        check_status(c.response(slow), 200, "/sleep")


def test_priority_field_orders_streams():
    """RFC 9218: of two large responses asked for together, the one with
    `priority: u=0` is sent before the `u=7` one asked for first; without a
    priority field, streams of one urgency go one after another (not
    interleaved), first come first.  The client's windows are large, so
    flow control does not make eddy switch streams."""
    body = os.urandom(300000)
    with temp_root({"a.bin": body, "b.bin": body}) as root, start(root=root) as srv, \
            H2(srv.addr, settings={S_INITIAL_WINDOW_SIZE: 2**20}) as c:
        c.send(hf.WindowUpdateFrame(0, window_increment=2**24))
        c.wait(lambda: c.settings_acked, "SETTINGS ACK")
        # Together: priority orders the streams eddy holds at once; a
        # request that comes after the other's body has gone has nothing
        # to overtake (it did, one run in a few, on a loaded machine).
        with c.corked():
            low = c.request("/a.bin", extra=[("priority", "u=7")])
            high = c.request("/b.bin", extra=[("priority", "u=0")])
        c.response(low, timeout=20)
        c.response(high, timeout=20)
        ends = [f.stream_id for f in c.frames if isinstance(f, hf.DataFrame) and "END_STREAM" in f.flags]
        check_eq(ends, [high, low], "the order the streams ended in")
        with c.corked():
            first, second = c.request("/a.bin"), c.request("/b.bin")
        c.response(second, timeout=20)
        data = [f.stream_id for f in c.frames if isinstance(f, hf.DataFrame) and f.stream_id in (first, second)]
        check_eq(data, sorted(data), "DATA of the second stream only after the first's")


# -------------------------------------------------------- flow control --

def test_large_file_small_window():
    """A 3 MiB file through the default 64 KiB windows, opened as the client
    reads: every byte arrives, in frames no larger than 16 KiB."""
    body = os.urandom(3 * MiB)
    with temp_root({"big.bin": body}) as root, start(root=root) as srv, H2(srv.addr) as c:
        st = c.response(c.request("/big.bin"), timeout=30)
        check_status(st, 200, "GET /big.bin")
        check_eq(hashlib.sha256(st["data"]).hexdigest(), hashlib.sha256(body).hexdigest(), "sha256")
        sizes = [len(f.data) for f in c.frames if isinstance(f, hf.DataFrame)]
        check(max(sizes) <= 16384, f"largest DATA frame {max(sizes)}")


def test_zero_window_pauses_only_that_stream():
    """With the client's stream windows at 0, nothing is sent; opening one
    stream's window lets that stream finish while the other waits."""
    body = os.urandom(100000)
    with temp_root({"a.bin": body, "b.bin": body}) as root, start(root=root) as srv, \
            H2(srv.addr, settings={S_INITIAL_WINDOW_SIZE: 0}, auto_window=False) as c:
        c.wait(lambda: c.settings_acked, "SETTINGS ACK")
        c.send(hf.WindowUpdateFrame(0, window_increment=4 * len(body)))   # the connection's own
        a = c.request("/a.bin")
        b = c.request("/b.bin")
        c.wait(lambda: c.stream(a)["headers"] and c.stream(b)["headers"], "both heads")
        time.sleep(0.3)
        with contextlib.suppress(Failure):
            c.wait(lambda: c.stream(a)["data"] or c.stream(b)["data"], "no DATA", timeout=0.3)
        check_eq(c.stream(a)["data"] + c.stream(b)["data"], b"", "DATA sent into a zero window")
        c.send(hf.WindowUpdateFrame(b, window_increment=len(body)))
        st = c.response(b)
        check_eq(st["data"], body, "stream b's body")
        check_eq(c.stream(a)["data"], b"", "stream a sent nothing")
        c.send(hf.WindowUpdateFrame(a, window_increment=len(body)))
        check_eq(c.response(a)["data"], body, "stream a's body once opened")


def test_window_never_opened_meets_send_timeout():
    """A client that never opens its window is closed after the send
    timeout, as an HTTP/1.1 client that stops reading is."""
    body = os.urandom(200000)
    with temp_root({"a.bin": body}) as root, start("--send-timeout", "1", root=root) as srv, \
            H2(srv.addr, settings={S_INITIAL_WINDOW_SIZE: 0}, auto_window=False) as c:
        c.request("/a.bin")
        t0 = time.monotonic()
        c.wait_closed("the send timeout", timeout=8)
        check(time.monotonic() - t0 >= 0.8, "closed before the timeout")


# ---------------------------------------------------------- validation --

def stream_error(c, headers, what, want=PROTOCOL_ERROR, end_stream=True, then=None):
    sid = c.next_id
    c.next_id += 2
    c.headers(sid, headers, end_stream=end_stream)
    if then:
        then(sid)
    st = c.response(sid)
    check(st["reset"] == want or (c.goaway and c.goaway[1] == want),
          f"{what}: want RST_STREAM {want}, got status {status(st)} reset {st['reset']} goaway {c.goaway}")


BASE = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "localhost")]


def test_malformed_requests_are_stream_errors():
    """RFC 9113 §8.1.1, §8.2, §8.3: each malformed request is a stream error
    (PROTOCOL_ERROR), and the connection goes on serving."""
    cases = [
        ("an uppercase field name", BASE + [("Accept", "x")]),
        ("a connection-specific field", BASE + [("connection", "keep-alive")]),
        ("transfer-encoding", BASE + [("transfer-encoding", "chunked")]),
        ("te other than trailers", BASE + [("te", "gzip")]),
        ("a pseudo-header after a field", BASE[:3] + [("accept", "x"), (":authority", "localhost")]),
        ("a repeated :path", BASE + [(":path", "/again")]),
        ("no :method", BASE[1:]),
        ("no :path", [BASE[0], BASE[1], BASE[3]]),
        ("an unknown pseudo-header", BASE + [(":foo", "bar")]),
        ("a response pseudo-header", BASE + [(":status", "200")]),
        ("an empty :path", [BASE[0], BASE[1], (":path", ""), BASE[3]]),
        ("a value with a newline", BASE + [("x-a", "b\nc")]),
    ]
    with start() as srv, H2(srv.addr) as c:
        for what, headers in cases:
            stream_error(c, headers, what)
            check(c.goaway is None, f"{what}: the connection ended ({c.goaway})")
        check_status(c.response(c.request("/")), 200, "a good request after them")


def test_content_length_mismatch():
    """content-length that the DATA does not add up to: a stream error."""
    with start() as srv, H2(srv.addr) as c:
        stream_error(c, [(":method", "POST")] + BASE[1:] + [("content-length", "10")],
                     "content-length 10 with 5 bytes", end_stream=False,
                     then=lambda sid: c.data(sid, b"12345", end_stream=True))
        check_status(c.response(c.request("/")), 200, "a good request after it")


def test_authority_and_host():
    """:authority stands for Host; a Host naming another authority is 400,
    as is a bad authority."""
    with start() as srv, H2(srv.addr) as c:
        st = c.response(c.request("/", extra=[("host", "other.test")]))
        check_status(st, 400, "Host differing from :authority")
        st = c.response(c.request("/", authority="bad host"))
        check(status(st) == "400" or st["reset"] is not None, f"bad authority: {status(st)} {st['reset']}")
        st = c.response(c.request("/", authority=None, extra=[("host", "localhost")]))
        check_status(st, 200, "Host without :authority")


def test_trailers_and_body_on_get():
    """A request with a body and trailers is taken whole (body dropped for
    files), and answered."""
    with start() as srv, H2(srv.addr) as c:
        sid = c.request("/", end_stream=False)
        c.data(sid, b"x" * 100)
        c.headers(sid, [("x-trailer", "1")], end_stream=True)
        check_status(c.response(sid), 200, "GET with body and trailers")


# --------------------------------------------------------------- limits --

def test_max_concurrent_streams():
    """--h2-max-streams 4: SETTINGS says 4.  A fifth stream while four are
    open, once the client has acknowledged the limit, is a PROTOCOL_ERROR
    (RFC 9113 §5.1.2; nghttp2 makes it a connection error, which §5.4
    allows): GOAWAY naming the fourth as the last stream."""
    with start("--h2-max-streams", "4", "--delay", "/sleep=1") as srv:
        with H2(srv.addr) as c:
            c.wait(lambda: S_MAX_CONCURRENT_STREAMS in c.server_settings, "SETTINGS")
            check_eq(c.server_settings[S_MAX_CONCURRENT_STREAMS], 4, "SETTINGS_MAX_CONCURRENT_STREAMS")
            c.wait(lambda: c.settings_acked, "SETTINGS ACK")
            time.sleep(0.1)   # our ACK of eddy's SETTINGS has arrived
            ids = [c.request("/sleep") for _ in range(4)]
            c.request("/")
            c.wait_closed("a fifth stream")
            check_eq(c.goaway, (ids[-1], PROTOCOL_ERROR), "GOAWAY (last stream, code)")
        with H2(srv.addr) as c:   # up to the limit is fine
            ids = [c.request("/sleep") for _ in range(4)]
            for sid in ids:
                check_status(c.response(sid, timeout=15), 200, f"stream {sid}")


def test_header_list_too_large_431():
    """A header list beyond --max-header-bytes is answered 431; too many
    fields too; the connection goes on."""
    with start("--max-header-bytes", "4096", "--max-headers", "20") as srv, H2(srv.addr) as c:
        st = c.response(c.request("/", extra=[("x-big", "a" * 5000)]))
        check_status(st, 431, "a 5000-byte field")
        st = c.response(c.request("/", extra=[(f"x-{i}", "v") for i in range(25)]))
        check_status(st, 431, "25 fields")
        check_status(c.response(c.request("/")), 200, "a request afterwards")


def test_body_limit_413():
    """A body beyond --max-body: 413 (by content-length at once, or as DATA
    crosses it)."""
    with start("--max-body", "1000") as srv, H2(srv.addr) as c:
        st = c.response(c.request("/", method="POST", end_stream=False,
                                  extra=[("content-length", "5000")]))
        check_status(st, 413, "content-length 5000")
        sid = c.request("/", method="POST", end_stream=False)
        c.data(sid, b"x" * 800)
        c.data(sid, b"x" * 800, end_stream=True)
        check_status(c.response(sid), 413, "1600 bytes of DATA")


def test_idle_connection_closed_with_goaway():
    """An idle connection gets GOAWAY NO_ERROR and is closed after the
    keep-alive timeout."""
    with start("--keepalive-timeout", "1") as srv, H2(srv.addr) as c:
        check_status(c.response(c.request("/")), 200, "GET /")
        t0 = time.monotonic()
        c.wait_closed("the keep-alive timeout", timeout=8)
        check(time.monotonic() - t0 >= 0.8, "closed before the timeout")
        check_eq(c.goaway and c.goaway[1], NO_ERROR, "GOAWAY error code")


# --------------------------------------------------------------- floods --

def check_calm(c, what):
    c.wait_closed(what, timeout=15)
    check(c.goaway is not None and c.goaway[1] == ENHANCE_YOUR_CALM,
          f"{what}: want GOAWAY ENHANCE_YOUR_CALM, got {c.goaway}")


def test_rapid_reset_flood():
    """CVE-2023-44487: HEADERS then RST_STREAM in a loop ends the connection
    with ENHANCE_YOUR_CALM; eddy serves on."""
    with start() as srv:
        with H2(srv.addr) as c:
            frames = []
            for i in range(600):
                sid = 1 + 2 * i
                frames.append(hf.HeadersFrame(sid, data=c.block(BASE), flags=["END_STREAM", "END_HEADERS"]))
                frames.append(hf.RstStreamFrame(sid, error_code=0x8))
            with contextlib.suppress(OSError):
                c.send(*frames)
            check_calm(c, "rapid reset")
        with H2(srv.addr) as c:
            check_status(c.response(c.request("/")), 200, "a new connection afterwards")


def test_ping_flood():
    with start() as srv, H2(srv.addr) as c:
        with contextlib.suppress(OSError):
            c.send(*[hf.PingFrame(0, opaque_data=i.to_bytes(8, "big")) for i in range(3000)])
        check_calm(c, "PING flood")


def test_settings_flood():
    with start() as srv, H2(srv.addr) as c:
        with contextlib.suppress(OSError):
            c.send(*[hf.SettingsFrame(0, settings={S_HEADER_TABLE_SIZE: 4096}) for _ in range(3000)])
        check_calm(c, "SETTINGS flood")


def test_empty_data_flood():
    with start() as srv, H2(srv.addr) as c:
        sid = c.request("/", method="POST", end_stream=False)
        with contextlib.suppress(OSError):
            c.send(*[hf.DataFrame(sid, data=b"") for _ in range(3000)])
        check_calm(c, "empty DATA flood")


def test_continuation_flood():
    """HEADERS without END_HEADERS followed by endless CONTINUATION frames
    (2024) ends the connection instead of buffering them."""
    with start() as srv, H2(srv.addr) as c:
        block = c.block(BASE)
        frames = [hf.HeadersFrame(1, data=block[:2], flags=[])]
        frames += [hf.ContinuationFrame(1, data=b"") for _ in range(100)]
        with contextlib.suppress(OSError):
            c.send(*frames)
        check_calm(c, "CONTINUATION flood")


def test_hpack_bomb():
    """One large field in the dynamic table, referenced again and again: the
    decoded list grows far past the limit, and the connection ends."""
    with start() as srv, H2(srv.addr) as c:
        c.response(c.request("/", extra=[("x-bomb", "a" * 3000)]))   # now in the table
        sid = c.next_id
        c.next_id += 2
        block = c.block(BASE + [("x-bomb", "a" * 3000)] * 60)        # 60 one-byte references
        check(len(block) < 200, f"the bomb's block is {len(block)} bytes")
        with contextlib.suppress(OSError):
            c.send(hf.HeadersFrame(sid, data=block, flags=["END_STREAM", "END_HEADERS"]))
        check_calm(c, "HPACK bomb")


def test_hpack_table_larger_than_allowed():
    """A dynamic table size update beyond the 4096 bytes eddy allows is a
    COMPRESSION_ERROR (RFC 7541 §6.3, RFC 9113 §4.3)."""
    with start() as srv, H2(srv.addr) as c:
        update_to_8192 = bytes([0x3F, 0xE1, 0x3F])
        c.send(hf.HeadersFrame(1, data=update_to_8192 + c.block(BASE), flags=["END_STREAM", "END_HEADERS"]))
        c.wait_closed("table size update")
        check_eq(c.goaway and c.goaway[1], COMPRESSION_ERROR, "GOAWAY code")


def test_stalled_body_meets_header_timeout():
    """A stream whose body stops coming is cut by --header-timeout, as a
    stalled HTTP/1.1 head is."""
    with start("--header-timeout", "1") as srv, H2(srv.addr) as c:
        sid = c.request("/", method="POST", end_stream=False)
        c.data(sid, b"x" * 10)
        t0 = time.monotonic()
        c.wait_closed("the header timeout", timeout=8)
        check(time.monotonic() - t0 >= 0.8, "closed before the timeout")


def test_window_overflow_is_flow_control_error():
    """A WINDOW_UPDATE that takes the window past 2^31-1 is a connection
    error FLOW_CONTROL_ERROR (RFC 9113 §6.9.1)."""
    with start() as srv, H2(srv.addr) as c:
        c.send(hf.WindowUpdateFrame(0, window_increment=2**31 - 1))
        c.wait_closed("window overflow")
        check_eq(c.goaway and c.goaway[1], FLOW_CONTROL_ERROR, "GOAWAY code")


# ------------------------------------------------------------- shutdown --

def test_sigterm_goaway_then_answers():
    """SIGTERM with a stream in flight: GOAWAY NO_ERROR naming it as the
    last stream, then its answer, then the close; eddy exits 0."""
    with start("--delay", "/sleep=1") as srv, H2(srv.addr) as c:
        sid = c.request("/sleep")
        time.sleep(0.2)
        srv.signal(signal.SIGTERM)
        c.wait(lambda: c.goaway is not None, "GOAWAY")
        check_eq(c.goaway, (sid, NO_ERROR), "GOAWAY (last stream, code)")
        check_status(c.response(sid), 200, "the stream in flight")
        c.wait_closed("after the last answer")
        check_eq(srv.wait(10), 0, "exit status")


# -------------------------------------------------------------- clients --

def tool(name, package):
    return tls.tool(name, package)


def test_curl_prior_knowledge_and_alpn():
    curl = tool("curl", "curl")
    with start() as srv:
        url = f"http://127.0.0.1:{srv.addr[1]}/"
        p = subprocess.run([curl, "-s", "--http2-prior-knowledge", "-w", "\n%{http_version}", url],
                           capture_output=True, timeout=20)
        check_eq(p.stdout, INDEX_HTML + b"\n2", "curl --http2-prior-knowledge")
    with start(secure=True) as srv:
        url = f"https://localhost:{srv.addr[1]}/"
        p = subprocess.run([curl, "-s", "--http2", "--cacert", tls.make_certs().ca, "--resolve",
                            f"localhost:{srv.addr[1]}:127.0.0.1", "-w", "\n%{http_version}", url],
                           capture_output=True, timeout=20)
        check_eq(p.stdout, INDEX_HTML + b"\n2", f"curl --http2 over TLS ({short(p.stderr)})")


def test_nghttp_client():
    nghttp = tool("nghttp", "nghttp2-client")
    with start() as srv:
        p = subprocess.run([nghttp, "-n", "--stat", f"http://127.0.0.1:{srv.addr[1]}/",
                            f"http://127.0.0.1:{srv.addr[1]}/404.html"], capture_output=True, timeout=20)
        check_eq(p.returncode, 0, f"nghttp exit status ({short(p.stderr)})")


def test_h2load_no_failures():
    h2load = tool("h2load", "nghttp2-client")
    with start() as srv:
        p = subprocess.run([h2load, "-n", "5000", "-c", "4", "-m", "16",
                            f"http://127.0.0.1:{srv.addr[1]}/"], capture_output=True, timeout=60)
        out = p.stdout.decode()
        check("5000 succeeded, 0 failed, 0 errored" in out, f"h2load: {short(out, 600)}")
    with start(secure=True) as srv:
        p = subprocess.run([h2load, "-n", "2000", "-c", "4", "-m", "16",
                            f"https://127.0.0.1:{srv.addr[1]}/"], capture_output=True, timeout=60)
        out = p.stdout.decode()
        check("2000 succeeded, 0 failed, 0 errored" in out and "h2" in out, f"h2load TLS: {short(out, 600)}")


def test_upload_streamed_over_h2():
    """A streamed request body (the upload example) arrives whole over
    HTTP/2, through windows opened as the handler takes it."""
    need_h2()
    if not run.UPLOAD_EXAMPLE:
        raise Skip("--example-upload not given")
    body = os.urandom(2 * MiB)
    import zlib
    with run.start_upload_example() as srv, H2(srv.addr) as c:
        c.wait(lambda: S_INITIAL_WINDOW_SIZE in c.server_settings, "SETTINGS")
        sid = c.request("/upload", method="POST", end_stream=False)
        c.send_body(sid, body, timeout=20)
        st = c.response(sid, timeout=30)
        check_status(st, 200, "POST /upload")
        want = f"bytes={len(body)} sum={zlib.crc32(body):08x}\n".encode()
        check_eq(st["data"], want, "what the handler counted")


def test_chromium_page_with_many_assets():
    """Headless Chromium (the test CA trusted) loads a page with 40 scripts
    over https: it speaks h2 (the navigation's and every resource's
    nextHopProtocol), every script ran, and eddy's access log has each
    request as HTTP/2.0."""
    tls.tool("chromium", "chromium")
    tls.tool("certutil", "libnss3-tools")
    n = 40
    scripts = "".join(f'<script src="/s/{i}.js"></script>' for i in range(n))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>h2 page</title>
<script>window.ran = 0;</script>{scripts}</head><body><p id="out">nothing</p>
<script>
var nav = performance.getEntriesByType('navigation')[0].nextHopProtocol;
var res = performance.getEntriesByType('resource').filter(function (r) {{ return r.nextHopProtocol === 'h2'; }});
document.getElementById('out').textContent = nav + ' ' + res.length + ' ' + window.ran;
</script></body></html>""".encode()
    with tls.temp_dir() as root, tls.temp_dir("eddy-chromium-") as home:
        (root / "page.html").write_bytes(page)
        (root / "s").mkdir()
        for i in range(n):
            (root / "s" / f"{i}.js").write_bytes(f"window.ran += 1; // {i}\n".encode())
        tls.nss_db(home, tls.make_certs().ca)
        log = root / "access.log"
        with start("--access-log", str(log), root=root, secure=True) as srv:
            rc, dom, err = tls.chromium_dump(f"https://localhost:{srv.port}/page.html", home)
            check_eq(rc, 0, f"chromium exit status (stderr: {short(err, 300)})")
            check(f'<p id="out">h2 {n} {n}</p>' in dom, f"protocol, h2 resources, scripts run: {short(dom, 600)}")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                lines = log.read_text().splitlines() if log.exists() else []
                if sum(' HTTP/2.0" 200 ' in line for line in lines) >= n + 1:
                    break
                time.sleep(0.2)
            check(sum(' HTTP/2.0" 200 ' in line for line in lines) >= n + 1,
                  f"access log: {short(chr(10).join(lines[-5:]), 400)}")


TIMEOUTS = {"chromium_page_with_many_assets": 120, "large_file_small_window": 60,
            "h2load_no_failures": 120, "upload_streamed_over_h2": 60, "max_concurrent_streams": 40}


def all_tests():
    return [(name[len("test_"):], fn) for name, fn in globals().items()
            if name.startswith("test_") and callable(fn)]


if __name__ == "__main__":
    sys.exit(run.main(all_tests(), doc=__doc__, need_example=False, timeouts=TIMEOUTS,
                      cleanup=tls.remove_certs))
