#!/usr/bin/env python3
"""A recording HTTP/1.1 backend for eddy's reverse-proxy tests, controlled
byte by byte.

It listens on TCP (127.0.0.1, ::1, any address) or a unix socket, serves
each connection on its own thread, and records every request it receives:
the raw head, the method, target, version and fields in order, the body
(de-chunked, growing as it arrives), its framing, and the TCP connection it
came on (with when and how that connection ended).  Each request is then
answered by a handler, which returns the raw bytes to send or drives the
connection itself: keep it alive, sleep, trickle, die mid-body, reset,
never answer.

    from backend import Backend, response
    with Backend(handler=lambda req, conn: response(200, b"hi")) as b:
        ... b.url ... b.requests ... b.wait_requests(1)

    python3 tests/integration/backend.py --listen 127.0.0.1:9000   # logs requests
    python3 tests/integration/backend.py --unix /tmp/b.sock --sleep 1

Standard library only.  Every socket operation has a timeout, heads and
bodies are bounded, and close() ends every connection, so a test that fails
never leaves it hanging.
"""

import argparse
import contextlib
import os
import random
import re
import socket
import sys
import threading
import time

IO_TIMEOUT = 10.0        # any one read or write
IDLE_TIMEOUT = 30.0      # a kept-alive connection with no next request
MAX_HEAD = 1 << 20       # bytes of one request head
MAX_BODY = 1 << 30       # bytes of one request body

REQUEST_LINE_RE = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) (HTTP/\d\.\d)$")
TOKEN_RE = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
CHUNK_SIZE_RE = re.compile(rb"^([0-9a-fA-F]+)(;[^\r\n]*)?$")

REASONS = {100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created",
           204: "No Content", 206: "Partial Content", 301: "Moved Permanently", 302: "Found",
           304: "Not Modified", 400: "Bad Request", 404: "Not Found", 413: "Content Too Large",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


class Closed(Exception):
    """The peer closed (or reset) the connection, or the backend stops."""


# --------------------------------------------------------------- requests --



class HasFields:
    """Lookups over self.headers, [(name, value)] in order (any case)."""

    def values(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def header(self, name):
        v = self.values(name)
        return v[0] if v else None

    def names(self):
        return [k.lower() for k, _ in self.headers]


class Request(HasFields):
    """One request as the backend received it.  Recorded as soon as its
    head is in: body grows while it arrives; complete is set when the whole
    body is in; error says what went wrong if it never was."""

    def __init__(self, conn, index):
        self.conn = conn
        self.conn_id = conn.id
        self.index = index            # 0 for the first request of its connection
        self.received = time.monotonic()
        self.raw_head = b""           # request line and fields, up to the blank line
        self.method = self.target = self.version = None
        self.headers = []             # [(name, value)] as received, values without OWS
        self.framing = None           # "length", "chunked" or "none"
        self.body = bytearray()
        self.chunk_sizes = []
        self.trailers = []
        self.complete = False
        self.error = None

    def __repr__(self):
        state = "complete" if self.complete else f"error={self.error!r}"
        return (f"<Request conn={self.conn_id}#{self.index} {self.method} {self.target} "
                f"{len(self.body)} body bytes {state}>")


def parse_head(raw):
    """(method, target, version, [(name, value)]) from a request head
    (without its blank line); raises ValueError if it is not strictly
    well formed (CRLF lines, token names, no space before the colon, no
    obs-fold, no control characters)."""
    if b"\n" in raw.replace(b"\r\n", b""):
        raise ValueError("a bare LF in the head")
    if b"\r" in raw.replace(b"\r\n", b""):
        raise ValueError("a bare CR in the head")
    lines = raw.split(b"\r\n")
    m = REQUEST_LINE_RE.match(lines[0])
    if not m:
        raise ValueError(f"bad request line {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise ValueError(f"obs-fold line {line!r}")
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN_RE.match(name):
            raise ValueError(f"bad field line {line!r}")
        value = value.strip(b" \t")
        if any(c < 0x20 and c != 0x09 or c == 0x7f for c in value):
            raise ValueError(f"control character in field {line!r}")
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    return (m.group(1).decode(), m.group(2).decode("latin-1"), m.group(3).decode(), headers)


# -------------------------------------------------------------- responses --


def response(status=200, body=b"", headers=(), reason=None, length="auto", chunked=False,
             chunks=None, trailers=(), version="HTTP/1.1", head_only=False):
    """A response's bytes.  length: "auto" sends Content-Length: len(body),
    an int sends that number, None sends none (close-delimited: the
    handler closes after).  chunked: Transfer-Encoding: chunked, body cut
    in the sizes of chunks (a list) or random ones, then trailers.
    head_only: the head alone (for HEAD, or to send the body apart)."""
    if isinstance(body, str):
        body = body.encode()
    reason = REASONS.get(status, "Whatever") if reason is None else reason
    out = [f"{version} {status} {reason}\r\n".encode()]
    for k, v in headers:
        out.append(k.encode("latin-1") + b": " + v.encode("latin-1") + b"\r\n"
                   if isinstance(k, str) else k + b": " + v + b"\r\n")
    if chunked:
        out.append(b"Transfer-Encoding: chunked\r\n")
    elif length == "auto":
        out.append(f"Content-Length: {len(body)}\r\n".encode())
    elif length is not None:
        out.append(f"Content-Length: {length}\r\n".encode())
    out.append(b"\r\n")
    if head_only:
        return b"".join(out)
    if chunked:
        out.append(chunk_body(body, chunks, trailers))
    else:
        out.append(bytes(body))
    return b"".join(out)


def chunk_body(body, sizes=None, trailers=()):
    """body in the chunked coding: sizes (a list, repeated) or random ones."""
    out, i, n = [], 0, 0
    rnd = random.Random(len(body))
    while i < len(body):
        size = sizes[n % len(sizes)] if sizes else rnd.randint(1, 70000)
        piece = body[i:i + size]
        out.append(b"%x\r\n" % len(piece) + bytes(piece) + b"\r\n")
        i += len(piece)
        n += 1
    out.append(b"0\r\n")
    for k, v in trailers:
        out.append(f"{k}: {v}\r\n".encode())
    out.append(b"\r\n")
    return b"".join(out)


# ------------------------------------------------------------ connections --


class Conn:
    """One accepted connection; handlers drive it with these methods."""

    def __init__(self, backend, sock, cid, peer):
        self.backend = backend
        self.sock = sock
        self.id = cid
        self.peer = peer
        self.opened = time.monotonic()
        self.closed_at = None
        self.close_reason = None      # "eof", "reset", "us", "idle", "error: ...", "stopped"
        self.requests = []
        self.buf = b""
        self.sent = 0                 # response bytes written so far
        self.close_after = False      # set by a handler: close after its response

    # -- reading --

    def _recv(self, timeout=IO_TIMEOUT):
        if self.backend.stopping.is_set():
            raise Closed("stopped")
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(262144)
        except socket.timeout:
            raise Closed("timeout")
        except ConnectionResetError:
            raise Closed("reset")
        except OSError as e:
            raise Closed("stopped" if self.backend.stopping.is_set() else f"error: {e}")
        if not data:
            raise Closed("eof")
        return data

    def _read_until(self, sep, limit, timeout=IO_TIMEOUT):
        while sep not in self.buf:
            if len(self.buf) > limit:
                raise ValueError(f"more than {limit} bytes without {sep!r}")
            self.buf += self._recv(timeout)
        line, self.buf = self.buf.split(sep, 1)
        return line

    def _read_into(self, body, n):
        while n > 0:
            if not self.buf:
                self.buf = self._recv()
            piece = self.buf[:n]
            self.buf = self.buf[len(piece):]
            body += piece
            n -= len(piece)

    def wait_eof(self, timeout=IO_TIMEOUT):
        """Reads (and drops) until the peer closes; returns how: "eof",
        "reset", "timeout" or "stopped"."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            try:
                self._recv(min(left, 0.5))
            except Closed as e:
                if str(e) == "timeout":
                    continue
                return str(e)

    # -- writing --

    def send(self, data):
        """Sends data whole (raises Closed if the peer is gone)."""
        self.sock.settimeout(IO_TIMEOUT)
        try:
            view = memoryview(data)
            while view:
                if self.backend.stopping.is_set():
                    raise Closed("stopped")
                n = self.sock.send(view[:1 << 20])
                self.sent += n
                view = view[n:]
        except socket.timeout:
            raise Closed("timeout")
        except OSError as e:
            raise Closed(f"error: {e}")

    def send_slowly(self, data, piece=1, delay=0.01):
        """Sends data in pieces of `piece` bytes, `delay` s apart."""
        for i in range(0, len(data), piece):
            self.send(data[i:i + piece])
            if not self.hold(delay):
                raise Closed("stopped")

    def hold(self, seconds):
        """Sleeps; False if the backend stops meanwhile."""
        return not self.backend.stopping.wait(seconds)

    def close(self, reason="us"):
        if self.closed_at is None:
            self.closed_at = time.monotonic()
            self.close_reason = reason
        with contextlib.suppress(OSError):
            self.sock.close()
        self.backend._changed()

    def shutdown_write(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def reset(self):
        """Closes with an RST instead of a FIN."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.close("us (reset)")

    @property
    def closed(self):
        return self.closed_at is not None

    def __repr__(self):
        return f"<Conn {self.id} {len(self.requests)} requests closed={self.close_reason}>"

    # -- serving --

    def serve(self):
        try:
            while not self.closed:
                try:
                    raw = self._read_until(b"\r\n\r\n", MAX_HEAD,
                                           IO_TIMEOUT if self.buf else IDLE_TIMEOUT)
                except Closed as e:
                    self.close("idle" if str(e) == "timeout" and not self.buf else str(e))
                    return
                except ValueError as e:
                    self.close(f"error: {e}")
                    return
                req = Request(self, len(self.requests))
                req.raw_head = raw
                self.requests.append(req)
                self.backend._record(req)
                try:
                    req.method, req.target, req.version, req.headers = parse_head(raw)
                    self._read_body(req)
                except ValueError as e:
                    req.error = str(e)
                    self.close(f"error: {e}")
                    return
                except Closed as e:
                    req.error = f"{e} in the body after {len(req.body)} bytes"
                    self.close(str(e))
                    return
                req.complete = True
                self.backend._changed()
                if not self._answer(req):
                    return
        finally:
            if not self.closed:
                self.close("stopped" if self.backend.stopping.is_set() else "us")

    def _read_body(self, req):
        te = [v.strip().lower() for v in ",".join(req.values("transfer-encoding")).split(",")
              if v.strip()]
        cls = req.values("content-length")
        if te:
            if te[-1] != "chunked":
                raise ValueError(f"Transfer-Encoding {te!r} does not end in chunked")
            if cls:
                req.error = "both Content-Length and Transfer-Encoding"   # kept if complete
            req.framing = "chunked"
            self._read_chunked(req)
        elif cls:
            if len(set(cls)) != 1 or not cls[0].isdigit():
                raise ValueError(f"bad Content-Length {cls!r}")
            n = int(cls[0])
            if n > MAX_BODY:
                raise ValueError(f"Content-Length {n} too large")
            req.framing = "length"
            self._read_into(req.body, n)
        else:
            req.framing = "none"

    def _read_chunked(self, req):
        while True:
            line = self._read_until(b"\r\n", 4096)
            m = CHUNK_SIZE_RE.match(line)
            if not m:
                raise ValueError(f"bad chunk size line {line!r}")
            size = int(m.group(1), 16)
            if size == 0:
                break
            if len(req.body) + size > MAX_BODY:
                raise ValueError("chunked body too large")
            req.chunk_sizes.append(size)
            self._read_into(req.body, size)
            crlf = bytearray()
            self._read_into(crlf, 2)
            if crlf != b"\r\n":
                raise ValueError(f"chunk data not followed by CRLF: {bytes(crlf)!r}")
        while True:
            line = self._read_until(b"\r\n", 65536)
            if not line:
                return
            name, sep, value = line.partition(b":")
            if not sep or not TOKEN_RE.match(name):
                raise ValueError(f"bad trailer line {line!r}")
            req.trailers.append((name.decode("latin-1"), value.strip().decode("latin-1")))

    def _answer(self, req):
        """Runs the handler; True to read the next request."""
        try:
            out = self.backend.handler_for(req)(req, self)
            if out is not None:
                self.send(out)
                if isinstance(out, (bytes, bytearray)) and re.search(
                        rb"\r\nconnection:[ \t]*close", out.split(b"\r\n\r\n", 1)[0], re.I):
                    self.close_after = True
        except Closed as e:
            self.close(str(e))
            return False
        except Exception as e:   # a broken handler: recorded, the connection closed
            self.backend.errors.append(f"handler: {type(e).__name__}: {e}")
            self.close(f"error: handler {type(e).__name__}: {e}")
            return False
        if self.closed:
            return False
        if self.close_after or (req.header("connection") or "").lower() == "close":
            self.close("us")
            return False
        return True


# ---------------------------------------------------------------- backend --


def default_handler(req, conn):
    """200 with the body "NAME METHOD TARGET" and X-Backend: NAME; HEAD
    gets the same head without the body; the health path the status
    health_status."""
    b = conn.backend
    if b.health_status is not None and req.target == b.health_path:
        return response(b.health_status, b"health\n")
    body = f"{b.name} {req.method} {req.target}".encode()
    return response(200, body, [("X-Backend", b.name), ("Content-Type", "text/plain")],
                    head_only=req.method == "HEAD")


class Backend:
    """A listening backend.  family: "tcp4" (127.0.0.1), "tcp6" (::1) or
    "unix" (path, or a fresh one in a temporary directory); port 0 picks
    one.  handler(req, conn) answers each request: it returns bytes to
    send (the connection then stays open for the next request unless the
    bytes or the request say Connection: close, or the handler closed it)
    or None when it sent (or will not send) the answer itself."""

    def __init__(self, handler=None, family="tcp4", host=None, port=0, path=None, name="A",
                 backlog=4096, health_path="/health", health_status=None):
        self.name = name
        self.handler = handler or default_handler
        self.family = family
        self.health_path = health_path
        self.health_status = health_status   # None: the health path is a request like any
        self.stopping = threading.Event()
        self.cond = threading.Condition()
        self.requests = []
        self.conns = []
        self.errors = []
        self._threads = []
        self._tmpdir = None
        if family == "unix":
            if path is None:
                import tempfile
                self._tmpdir = tempfile.mkdtemp(prefix="eddy-backend-")
                path = os.path.join(self._tmpdir, "backend.sock")
            self.path = str(path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.lsock.bind(self.path)
            self.addr = self.path
        else:
            fam = socket.AF_INET6 if family == "tcp6" else socket.AF_INET
            host = host or ("::1" if family == "tcp6" else "127.0.0.1")
            self.lsock = socket.socket(fam, socket.SOCK_STREAM)
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.lsock.bind((host, port))
            self.addr = self.lsock.getsockname()[:2]
        self.lsock.listen(backlog)
        self.lsock.settimeout(0.2)
        t = threading.Thread(target=self._accept_loop, name=f"backend-{name}", daemon=True)
        t.start()
        self._accepter = t

    @property
    def port(self):
        return None if self.family == "unix" else self.addr[1]

    @property
    def url(self):
        if self.family == "unix":
            return f"unix:{self.path}"
        host, port = self.addr
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def handler_for(self, req):
        return self.handler

    # -- threads --

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                sock, peer = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                time.sleep(0.05)   # EMFILE and the like: try again
                continue
            if self.stopping.is_set():
                sock.close()
                return
            with self.cond:
                conn = Conn(self, sock, len(self.conns), peer)
                self.conns.append(conn)
                self.cond.notify_all()
            t = threading.Thread(target=conn.serve, name=f"backend-{self.name}-{conn.id}",
                                 daemon=True)
            self._threads.append(t)
            t.start()

    def _record(self, req):
        with self.cond:
            self.requests.append(req)
            self.cond.notify_all()

    def _changed(self):
        with self.cond:
            self.cond.notify_all()

    # -- waiting --

    def wait(self, pred, timeout=5.0):
        """Waits until pred() holds (checked on every change, and every
        50 ms); returns its last value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                left = deadline - time.monotonic()
                if v or left <= 0:
                    return v
                self.cond.wait(min(left, 0.05))

    def wait_requests(self, n, timeout=5.0, complete=True):
        """True once n requests arrived (whole, with complete)."""
        return bool(self.wait(lambda: len([r for r in self.requests
                                           if r.complete or not complete]) >= n, timeout))

    def wait_conn_closed(self, conn, timeout=5.0):
        return bool(self.wait(lambda: conn.closed, timeout))

    def quiet_for(self, seconds, count=None):
        """True if no new request arrives within seconds."""
        n = len(self.requests) if count is None else count
        return not self.wait(lambda: len(self.requests) > n, seconds)

    # -- stopping --

    def close(self):
        self.stopping.set()
        with contextlib.suppress(OSError):
            self.lsock.close()
        self._accepter.join(2)
        for c in list(self.conns):
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RDWR)
            if c.closed_at is None:
                c.closed_at = time.monotonic()
                c.close_reason = c.close_reason or "stopped"
            with contextlib.suppress(OSError):
                c.sock.close()
        deadline = time.monotonic() + 3
        for t in self._threads:
            t.join(max(0, deadline - time.monotonic()))
        if self.family == "unix":
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            if self._tmpdir:
                with contextlib.suppress(OSError):
                    os.rmdir(self._tmpdir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def refused_port(host="127.0.0.1"):
    """A port where nothing listens (bound, then closed)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------- main --


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:9000", help="HOST:PORT ([::1]:PORT for IPv6)")
    ap.add_argument("--unix", help="listen on this unix socket instead")
    ap.add_argument("--sleep", type=float, default=0, help="seconds before each answer")
    ap.add_argument("--name", default="A", help="the X-Backend field's value")
    opts = ap.parse_args()

    def handler(req, conn):
        print(f"conn {req.conn_id}#{req.index}: {req.method} {req.target} {req.version} "
              f"{len(req.body)} body bytes ({req.framing})", flush=True)
        for k, v in req.headers:
            print(f"    {k}: {v}", flush=True)
        if opts.sleep:
            conn.hold(opts.sleep)
        return default_handler(req, conn)

    if opts.unix:
        b = Backend(handler, family="unix", path=opts.unix, name=opts.name)
    else:
        host, _, port = opts.listen.rpartition(":")
        v6 = host.startswith("[")
        b = Backend(handler, family="tcp6" if v6 else "tcp4", host=host.strip("[]"),
                    port=int(port), name=opts.name)
    print(f"backend listening on {b.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
