#!/usr/bin/env python3
"""Integration tests for eddy's file serving: validators, conditional and
range requests, files over 4 GiB, precompressed variants, Cache-Control,
dotfiles, directories, the root boundary, MIME types and slow readers
(RFC 9110 §8.8, §12.5.3, §13, §14).

    python3 tests/integration/files.py --eddy build/eddy
    python3 tests/integration/files.py --eddy build/eddy -k range   # only names with 'range'

Same harness, command line, output and exit status as run.py (whose runner
this reuses; --example is accepted and ignored).  Standard library only.
Every test makes its own temporary root with exactly the files it needs and
starts its own eddy on it; the root is removed afterwards.
"""

import contextlib
import email.utils
import hashlib
import html
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (run.EDDY is set by run.main)
from run import Failure, RawConn, check, check_eq, short, start_eddy, IO_TIMEOUT  # noqa: E402

T0 = 1_600_000_000          # a fixed, whole-second mtime: Sun, 13 Sep 2020 12:26:40 GMT
IMF_RE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
PROBE = b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"


# ---------------------------------------------------------------- helpers --


@contextlib.contextmanager
def temp_root():
    """A fresh temporary directory; yields its 'root' subdirectory (the
    parent is there for files that must lie outside the root)."""
    top = Path(tempfile.mkdtemp(prefix="eddy-files-"))
    try:
        root = top / "root"
        root.mkdir()
        yield root
    finally:
        shutil.rmtree(top, ignore_errors=True)


def past_fstat_window():
    """eddy's file cache looks at an open file at most once per millisecond
    (a change in place is seen within it): a request sent sooner after a
    change may rightly get the old version."""
    time.sleep(0.005)


def put(root, rel, data, mtime=None):
    path = Path(root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def httpdate(t):
    return email.utils.formatdate(t, usegmt=True)


def request_bytes(method, path, headers=None):
    lines = [f"{method} {path} HTTP/1.1", "Host: t"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def fetch(addr, path, headers=None, method="GET", timeout=IO_TIMEOUT):
    """One request on a new connection, with a pipelined OPTIONS * behind
    it: the probe's answer must follow the response exactly, which proves
    the response's framing (no body on HEAD or 304, a body exactly as long
    as Content-Length) and that the connection stays usable."""
    try:
        return _fetch(addr, path, headers, method, timeout)
    except OSError as e:   # as a Failure, so the harness tells if the server died
        raise Failure(f"{method} {path} {headers or ''}: {type(e).__name__}: {e}") from None


def _fetch(addr, path, headers, method, timeout):
    with RawConn(addr, timeout) as c:
        c.send(request_bytes(method, path, headers) + PROBE)
        what = f"{method} {path} {headers or ''}"
        resp = c.read_response(head_request=(method == "HEAD"), timeout=timeout)
        if (resp.header("Connection") or "").lower() == "close":
            check(c.closed_within(3), f"{what}: Connection: close but no EOF")
            return resp
        try:
            probe = c.read_response(timeout=timeout)
        except Failure as e:
            raise Failure(f"{what}: the next response on the connection is broken "
                          f"(response framing?): {e}") from None
        check_eq(probe.status, 204, f"{what}: status of the OPTIONS * pipelined after it")
        check(not c.buf, f"{what}: extra bytes after the pipelined probe: {short(c.buf)}")
        return resp


def fetch_big(addr, path, headers=None, timeout=20):
    """GET of a large body into a bytearray (RawConn's bytes concatenation
    is quadratic); checks the body is exactly Content-Length long."""
    with RawConn(addr, timeout) as c:
        c.send(request_bytes("GET", path, headers))
        resp = c.read_response(head_request=True, timeout=timeout)
        n = int(resp.header("Content-Length"))
        body = bytearray(c.buf)
        c.buf = b""
        deadline = time.monotonic() + timeout
        while len(body) < n:
            c.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = c.sock.recv(1 << 20)
            except socket.timeout:
                raise Failure(f"GET {path}: {len(body)} of {n} bytes after {timeout} s")
            check(chunk, f"GET {path}: closed after {len(body)} of {n} body bytes")
            body += chunk
        check_eq(len(body), n, f"GET {path}: body length vs Content-Length")
        resp.body = bytes(body)
        return resp


def check_strong_etag(etag, what):
    check(etag is not None, f"{what}: no ETag")
    check(not etag.startswith("W/"), f"{what}: ETag {etag!r} is weak")
    check(re.fullmatch(r'"[\x21\x23-\x7e\x80-\xff]*"', etag), f"{what}: ETag {etag!r} is not a quoted entity-tag")


def check_304(resp, etag, what):
    check_eq(resp.status, 304, f"{what}: status")
    check_eq(resp.header("ETag"), etag, f"{what}: ETag on the 304")
    check_eq(resp.body, b"", f"{what}: body")


def check_full(resp, data, what):
    check_eq(resp.status, 200, f"{what}: status")
    check(resp.body == data, f"{what}: body is not the whole file: {short(resp.body)}")
    check_eq(resp.header("Content-Length"), str(len(data)), f"{what}: Content-Length")


def check_206(resp, data, first, last, what):
    size = len(data)
    check_eq(resp.status, 206, f"{what}: status")
    check_eq(resp.header("Content-Range"), f"bytes {first}-{last}/{size}", f"{what}: Content-Range")
    check_eq(resp.header("Content-Length"), str(last - first + 1), f"{what}: Content-Length")
    check(resp.body == data[first:last + 1],
          f"{what}: body {short(resp.body)}, want bytes {first}-{last} {short(data[first:last + 1])}")


def media_type(value):
    """'Text/HTML; Charset="UTF-8"' -> ('text/html', {'charset': 'utf-8'})."""
    parts = (value or "").split(";")
    params = {}
    for p in parts[1:]:
        k, _, v = p.strip().partition("=")
        params[k.strip().lower()] = v.strip().strip('"').lower()
    return parts[0].strip().lower(), params


def parse_multipart(body, boundary, what):
    """multipart/byteranges body -> [(headers {lowercase name: value}, data)]."""
    delim = b"--" + boundary.encode("latin-1")
    i = body.find(delim)
    check(i >= 0, f"{what}: no boundary {delim!r} in the body {short(body)}")
    check(i == 0 or body[i - 2:i] == b"\r\n", f"{what}: first boundary not at a line start")
    pos = i + len(delim)
    parts = []
    while True:
        if body.startswith(b"--", pos):   # the close delimiter
            rest = body[pos + 2:]
            check(rest in (b"", b"\r\n"), f"{what}: bytes after the close delimiter: {short(rest)}")
            return parts
        check(body.startswith(b"\r\n", pos), f"{what}: no CRLF after a boundary at {pos}")
        pos += 2
        end = body.find(b"\r\n\r\n", pos)
        check(end >= 0, f"{what}: part head not ended")
        headers = {}
        for line in body[pos:end].decode("latin-1").split("\r\n"):
            name, sep, value = line.partition(":")
            check(sep and name, f"{what}: bad part header {short(line)}")
            headers[name.strip().lower()] = value.strip()
        pos = end + 4
        nxt = body.find(b"\r\n" + delim, pos)
        check(nxt >= 0, f"{what}: part not followed by a boundary")
        parts.append((headers, body[pos:nxt]))
        pos = nxt + 2 + len(delim)
        check(len(parts) <= 64, f"{what}: runaway multipart parse")


def check_multipart(resp, data, ranges, ctype, what):
    """A 206 multipart/byteranges with exactly `ranges` [(first, last)]."""
    size = len(data) if isinstance(data, (bytes, bytearray)) else data.size
    check_eq(resp.status, 206, f"{what}: status")
    mt, params = media_type(resp.header("Content-Type"))
    check_eq(mt, "multipart/byteranges", f"{what}: media type")
    check(params.get("boundary"), f"{what}: no boundary in {resp.header('Content-Type')!r}")
    # The boundary is case-sensitive: take it from the raw value.
    boundary = re.search(r'boundary="?([^";]+)"?', resp.header("Content-Type")).group(1)
    check(resp.header("Content-Range") is None, f"{what}: a multipart 206 has a top-level Content-Range")
    check_eq(resp.header("Content-Length"), str(len(resp.body)), f"{what}: Content-Length vs body")
    parts = parse_multipart(resp.body, boundary, what)
    check_eq(len(parts), len(ranges), f"{what}: number of parts")
    for (headers, body), (first, last) in zip(parts, ranges):
        check_eq(headers.get("content-type"), ctype, f"{what}: part Content-Type")
        check_eq(headers.get("content-range"), f"bytes {first}-{last}/{size}", f"{what}: part Content-Range")
        want = data[first:last + 1]
        check(body == want, f"{what}: part {first}-{last} is {short(body)}, want {short(want)}")


def pattern(n):
    """n distinct-looking bytes (no two 10-byte windows alike)."""
    return bytes((i * 7 + i // 256 * 13 + 3) % 256 for i in range(n))


# ------------------------------------------------------------------ tests --
# 1. Validators.

def test_validators():
    old = b"version one of the file\n"
    new = b"VERSION TWO OF THE FILE\n"   # same size: only content and mtime move
    with temp_root() as root:
        put(root, "v.txt", old, mtime=T0)
        with start_eddy(root=root) as srv:
            r = fetch(srv.addr, "/v.txt")
            check_full(r, old, "GET /v.txt")
            etag = r.header("ETag")
            check_strong_etag(etag, "GET /v.txt")
            lm = r.header("Last-Modified")
            check(lm and IMF_RE.match(lm), f"Last-Modified is not an IMF-fixdate: {lm!r}")
            check_eq(lm, httpdate(T0), "Last-Modified")
            check_eq(r.header("Accept-Ranges"), "bytes", "Accept-Ranges")
            check_eq(fetch(srv.addr, "/v.txt").header("ETag"), etag, "ETag of an unchanged file")
            h = fetch(srv.addr, "/v.txt", method="HEAD")
            check_eq((h.status, h.header("ETag"), h.header("Last-Modified")), (200, etag, lm),
                     "HEAD status and validators")

            put(root, "v.txt", new, mtime=T0 + 3600)
            past_fstat_window()
            r2 = fetch(srv.addr, "/v.txt")
            check_full(r2, new, "GET /v.txt after a change")
            etag2 = r2.header("ETag")
            check_strong_etag(etag2, "GET /v.txt after a change")
            check(etag2 != etag, f"ETag {etag!r} unchanged after the file changed")
            check_eq(r2.header("Last-Modified"), httpdate(T0 + 3600), "Last-Modified after a change")

            os.utime(root / "v.txt", (T0 + 7200, T0 + 7200))   # mtime alone
            past_fstat_window()
            etag3 = fetch(srv.addr, "/v.txt").header("ETag")
            check(etag3 not in (etag, etag2), f"ETag {etag3!r} unchanged after the mtime moved")


# 2. Conditional requests.

def cond_server(fn):
    """Runs fn(srv, data, etag, last_modified) against /c.txt."""
    data = pattern(300)
    with temp_root() as root:
        put(root, "c.txt", data, mtime=T0)
        with start_eddy(root=root) as srv:
            r = fetch(srv.addr, "/c.txt")
            check_full(r, data, "GET /c.txt")
            fn(srv, data, r.header("ETag"), r.header("Last-Modified"))


def test_if_none_match():
    def body(srv, data, etag, lm):
        for value in (etag, "*", f'"x", {etag}', f'"x",{etag} , "y"', f"W/{etag}"):
            check_304(fetch(srv.addr, "/c.txt", {"If-None-Match": value}), etag,
                      f"If-None-Match: {value}")
        check_304(fetch(srv.addr, "/c.txt", {"If-None-Match": etag}, method="HEAD"), etag,
                  "HEAD with If-None-Match")
        for value in ('"x"', '"x", W/"y"'):
            check_full(fetch(srv.addr, "/c.txt", {"If-None-Match": value}), data,
                       f"If-None-Match: {value}")
        # If-None-Match takes precedence over If-Modified-Since (§13.2.2).
        check_full(fetch(srv.addr, "/c.txt", {"If-None-Match": '"x"', "If-Modified-Since": lm}),
                   data, "If-None-Match not matching + If-Modified-Since = Last-Modified")
    cond_server(body)


def test_if_modified_since():
    def body(srv, data, etag, lm):
        check_304(fetch(srv.addr, "/c.txt", {"If-Modified-Since": lm}), etag,
                  "If-Modified-Since = Last-Modified")
        check_304(fetch(srv.addr, "/c.txt", {"If-Modified-Since": httpdate(T0 + 60)}), etag,
                  "If-Modified-Since a minute after Last-Modified")
        # Recipients must accept all three HTTP-date forms (§5.6.7).
        for value in ("Sunday, 13-Sep-20 12:26:40 GMT", "Sun Sep 13 12:26:40 2020"):
            check_304(fetch(srv.addr, "/c.txt", {"If-Modified-Since": value}), etag,
                      f"If-Modified-Since: {value} (obsolete form of Last-Modified)")
        check_full(fetch(srv.addr, "/c.txt", {"If-Modified-Since": httpdate(T0 - 86400)}), data,
                   "If-Modified-Since a day before Last-Modified")
        check_full(fetch(srv.addr, "/c.txt", {"If-Modified-Since": httpdate(T0 - 1)}), data,
                   "If-Modified-Since a second before Last-Modified")
        for value in ("yesterday", "Sun, 13 Sep 2020 12:26:40", "Sun, 32 Sep 2020 12:26:40 GMT"):
            check_full(fetch(srv.addr, "/c.txt", {"If-Modified-Since": value}), data,
                       f"If-Modified-Since: {value} (invalid: ignored)")
    cond_server(body)


def test_if_match():
    def body(srv, data, etag, lm):
        r = fetch(srv.addr, "/c.txt", {"If-Match": '"nope"'})
        check_eq(r.status, 412, 'If-Match: "nope" status')
        check(data not in r.body, "412 carries the file")
        for value in (etag, "*", f'"nope", {etag}'):
            check_full(fetch(srv.addr, "/c.txt", {"If-Match": value}), data, f"If-Match: {value}")
        # If-Match uses the strong comparison: a weak tag never matches.
        check_eq(fetch(srv.addr, "/c.txt", {"If-Match": f"W/{etag}"}).status, 412,
                 "If-Match: W/<etag> status")
    cond_server(body)


def test_if_unmodified_since():
    def body(srv, data, etag, lm):
        r = fetch(srv.addr, "/c.txt", {"If-Unmodified-Since": httpdate(T0 - 86400)})
        check_eq(r.status, 412, "If-Unmodified-Since before Last-Modified: status")
        check(data not in r.body, "412 carries the file")
        check_full(fetch(srv.addr, "/c.txt", {"If-Unmodified-Since": lm}), data,
                   "If-Unmodified-Since = Last-Modified")
        check_full(fetch(srv.addr, "/c.txt", {"If-Unmodified-Since": "garbage"}), data,
                   "If-Unmodified-Since invalid (ignored)")
        # If-Match present: If-Unmodified-Since is not evaluated (§13.2.2).
        check_full(fetch(srv.addr, "/c.txt", {"If-Match": etag,
                                              "If-Unmodified-Since": httpdate(T0 - 86400)}),
                   data, "If-Match matching + If-Unmodified-Since before")
    cond_server(body)


# 3. Ranges.

def range_server(fn, size=1000, *args):
    data = pattern(size)
    with temp_root() as root:
        put(root, "r.txt", data, mtime=T0)
        with start_eddy(*args, root=root) as srv:
            full = fetch(srv.addr, "/r.txt")
            check_full(full, data, "GET /r.txt")
            fn(srv, data, full)


def test_range_single():
    def body(srv, data, full):
        r = fetch(srv.addr, "/r.txt", {"Range": "bytes=0-9"})
        check_206(r, data, 0, 9, "bytes=0-9")
        check_eq(r.header("Content-Type"), full.header("Content-Type"), "206 Content-Type")
        check_eq(r.header("ETag"), full.header("ETag"), "206 ETag")
        check_206(fetch(srv.addr, "/r.txt", {"Range": "bytes=-10"}), data, 990, 999, "bytes=-10")
        check_206(fetch(srv.addr, "/r.txt", {"Range": "bytes=10-"}), data, 10, 999, "bytes=10-")
        check_206(fetch(srv.addr, "/r.txt", {"Range": "bytes=990-5000"}), data, 990, 999,
                  "bytes=990-5000 (clamped)")
        check_206(fetch(srv.addr, "/r.txt", {"Range": "bytes=-5000"}), data, 0, 999,
                  "bytes=-5000 (suffix longer than the file)")
        check_206(fetch(srv.addr, "/r.txt", {"Range": "bytes=999-999"}), data, 999, 999,
                  "bytes=999-999 (the last byte)")
        check_206(fetch(srv.addr, "/r.txt", {"Range": "bytes=500-599"}), data, 500, 599,
                  "bytes=500-599")
    range_server(body)


def test_range_multipart():
    def body(srv, data, full):
        ctype = full.header("Content-Type")
        r = fetch(srv.addr, "/r.txt", {"Range": "bytes=0-1,5-6"})
        check_multipart(r, data, [(0, 1), (5, 6)], ctype, "bytes=0-1,5-6")
        # Three ranges, a suffix among them, with OWS after the commas.
        r = fetch(srv.addr, "/r.txt", {"Range": "bytes=100-199, 300-309, -3"})
        check_multipart(r, data, [(100, 199), (300, 309), (997, 999)], ctype,
                        "bytes=100-199, 300-309, -3")
        many = [(i * 60, i * 60 + 2) for i in range(16)]
        r = fetch(srv.addr, "/r.txt", {"Range": "bytes=" + ",".join(f"{a}-{b}" for a, b in many)})
        check_multipart(r, data, many, ctype, "16 ranges")
        # Two multipart responses in a row on one connection: both framed.
        with RawConn(srv.addr) as c:
            c.send(request_bytes("GET", "/r.txt", {"Range": "bytes=0-1,5-6"}) * 2)
            for i in range(2):
                check_multipart(c.read_response(), data, [(0, 1), (5, 6)], ctype,
                                f"pipelined multipart #{i + 1}")
    range_server(body)


def test_range_unsatisfiable():
    def body(srv, data, full):
        for spec in ("bytes=1000-", "bytes=1000-1005", "bytes=5000-6000,1000-"):
            r = fetch(srv.addr, "/r.txt", {"Range": spec})
            check_eq(r.status, 416, f"{spec}: status")
            check_eq(r.header("Content-Range"), "bytes */1000", f"{spec}: Content-Range")
            check(data[:20] not in r.body, f"{spec}: 416 carries the file")
        # One satisfiable range among unsatisfiable ones is served.
        check_206(fetch(srv.addr, "/r.txt", {"Range": "bytes=2000-3000,0-4"}), data, 0, 4,
                  "bytes=2000-3000,0-4")
    range_server(body)


def test_range_malformed_ignored():
    def body(srv, data, full):
        for spec in ("bytes=x", "items=0-1", "bytes=5-2", "bytes=0-1,x", "bytes 0-1", "bytes=--1"):
            check_full(fetch(srv.addr, "/r.txt", {"Range": spec}), data, f"Range: {spec}")
    range_server(body)


def test_range_head_ignored():
    def body(srv, data, full):
        r = fetch(srv.addr, "/r.txt", {"Range": "bytes=0-9"}, method="HEAD")
        check_eq(r.status, 200, "HEAD with Range: status")
        check_eq(r.header("Content-Length"), "1000", "HEAD with Range: Content-Length")
        check(r.header("Content-Range") is None, "HEAD with Range has a Content-Range")
    range_server(body)


def test_if_range():
    def body(srv, data, full):
        etag, lm = full.header("ETag"), full.header("Last-Modified")
        check_206(fetch(srv.addr, "/r.txt", {"Range": "bytes=0-9", "If-Range": etag}),
                  data, 0, 9, "If-Range: <etag>")
        check_full(fetch(srv.addr, "/r.txt", {"Range": "bytes=0-9", "If-Range": '"other"'}),
                   data, 'If-Range: "other"')
        check_206(fetch(srv.addr, "/r.txt", {"Range": "bytes=0-9", "If-Range": lm}),
                  data, 0, 9, "If-Range: <Last-Modified>")
        check_full(fetch(srv.addr, "/r.txt", {"Range": "bytes=0-9", "If-Range": httpdate(T0 - 60)}),
                   data, "If-Range: an older date")
        # A weak tag never matches If-Range (strong comparison, §13.1.5).
        check_full(fetch(srv.addr, "/r.txt", {"Range": "bytes=0-9", "If-Range": f"W/{etag}"}),
                   data, "If-Range: W/<etag>")
    range_server(body)


# 4. Files over 4 GiB.

class Sparse:
    """The content of a sparse file: zeros and a few markers."""

    def __init__(self, size, marks):
        self.size = size
        self.marks = marks

    def __getitem__(self, s):
        first, stop = s.start, min(s.stop, self.size)
        out = bytearray(stop - first)
        for off, m in self.marks.items():
            for i, b in enumerate(m):
                if first <= off + i < stop:
                    out[off + i - first] = b
        return bytes(out)


def test_file_over_4gib():
    size = 5 << 30
    marks = {4 << 30: b"<at 4 GiB>", 9 << 29: b"<at 4.5 GiB>", size - 1: b"Z"}
    content = Sparse(size, marks)
    with temp_root() as root:
        path = root / "huge.bin"
        with open(path, "wb") as f:
            f.truncate(size)
        fd = os.open(path, os.O_WRONLY)
        try:
            for off, m in marks.items():
                os.pwrite(fd, m, off)
        finally:
            os.close(fd)
        with start_eddy(root=root) as srv:
            h = fetch(srv.addr, "/huge.bin", method="HEAD")
            check_eq(h.status, 200, "HEAD /huge.bin status")
            check_eq(h.header("Content-Length"), str(size), "HEAD /huge.bin Content-Length")
            with RawConn(srv.addr) as c:   # the head of a GET, then hang up
                c.send(request_bytes("GET", "/huge.bin"))
                r = c.read_response(head_request=True)
                check_eq(r.status, 200, "GET /huge.bin status")
                check_eq(r.header("Content-Length"), str(size), "GET /huge.bin Content-Length")
                while len(c.buf) < 4096:
                    chunk = c.sock.recv(65536)
                    check(chunk, "GET /huge.bin: closed before 4 KiB of body")
                    c.buf += chunk
                check(c.buf[:4096] == bytes(4096), "GET /huge.bin: first bytes not zeros")
            for off, m in marks.items():
                last = off + len(m) - 1
                r = fetch(srv.addr, "/huge.bin", {"Range": f"bytes={off}-{last}"})
                check_eq(r.status, 206, f"bytes={off}-{last} status")
                check_eq(r.header("Content-Range"), f"bytes {off}-{last}/{size}", f"bytes={off}-{last} Content-Range")
                check_eq(r.body, m, f"bytes={off}-{last} body")
            # Across the 4 GiB line, a suffix and an open range at the end.
            first, last = (4 << 30) - 6, (4 << 30) + 5
            r = fetch(srv.addr, "/huge.bin", {"Range": f"bytes={first}-{last}"})
            check_eq(r.header("Content-Range"), f"bytes {first}-{last}/{size}", "range across 4 GiB")
            check_eq(r.body, content[first:last + 1], "range across 4 GiB body")
            for spec in ("bytes=-1", f"bytes={size - 1}-"):
                r = fetch(srv.addr, "/huge.bin", {"Range": spec})
                check_eq((r.status, r.header("Content-Range"), r.body),
                         (206, f"bytes {size - 1}-{size - 1}/{size}", b"Z"), spec)
            r = fetch(srv.addr, "/huge.bin", {"Range": f"bytes={9 << 29}-{(9 << 29) + 11},-1"})
            check_multipart(r, content, [(9 << 29, (9 << 29) + 11), (size - 1, size - 1)],
                            "application/octet-stream", "multipart over 4 GiB")
            r = fetch(srv.addr, "/huge.bin", {"Range": f"bytes={size}-"})
            check_eq((r.status, r.header("Content-Range")), (416, f"bytes */{size}"),
                     f"bytes={size}- (416)")
            srv.check_alive()


# 5. Checksums.

def test_checksum_16mib():
    data = os.urandom(16 << 20)
    with temp_root() as root:
        put(root, "rand.bin", data)
        with start_eddy(root=root) as srv:
            r = fetch_big(srv.addr, "/rand.bin")
            check_eq(r.status, 200, "GET /rand.bin status")
            check_eq(hashlib.sha256(r.body).hexdigest(), hashlib.sha256(data).hexdigest(),
                     "sha256 of the whole file")
            first, last = 5_000_001, 12_345_677
            r = fetch_big(srv.addr, "/rand.bin", {"Range": f"bytes={first}-{last}"})
            check_eq(r.status, 206, "range status")
            check_eq(r.header("Content-Range"), f"bytes {first}-{last}/{len(data)}", "Content-Range")
            check_eq(hashlib.sha256(r.body).hexdigest(),
                     hashlib.sha256(data[first:last + 1]).hexdigest(), "sha256 of the range")


# 6. Precompressed variants.

ORIG = b"the original, identity-coded text\n" * 20
GZ = b"\x1f\x8b pretend gzip bytes of a.txt"
BR = b"pretend brotli bytes of a.txt, a little longer"


def variants_root(root):
    put(root, "a.txt", ORIG, mtime=T0)
    put(root, "a.txt.gz", GZ, mtime=T0 + 60)
    put(root, "a.txt.br", BR, mtime=T0 + 60)


def vary_has_ae(resp):
    return any(v.strip().lower() in ("accept-encoding", "*")
               for k, val in resp.headers if k.lower() == "vary" for v in val.split(","))


def check_coding(resp, coding, body, what):
    check_eq(resp.status, 200, f"{what}: status")
    check_eq(resp.header("Content-Encoding"), coding, f"{what}: Content-Encoding")
    check(resp.body == body, f"{what}: body {short(resp.body)}")
    check_eq(resp.header("Content-Length"), str(len(body)), f"{what}: Content-Length")
    check_eq(resp.header("Content-Type"), "text/plain; charset=utf-8", f"{what}: Content-Type")
    check(vary_has_ae(resp), f"{what}: no Vary: Accept-Encoding (headers {resp.headers})")


def test_precompressed_selection():
    with temp_root() as root:
        variants_root(root)
        with start_eddy(root=root) as srv:
            cases = [
                ("gzip", "gzip", GZ),
                ("br, gzip", "br", BR),
                ("gzip, deflate, br, zstd", "br", BR),
                ("br;q=0, gzip", "gzip", GZ),
                ("gzip;q=0", None, ORIG),
                ("gzip;q=0, deflate", None, ORIG),
                (None, None, ORIG),
                ("", None, ORIG),          # empty: no coding wanted (§12.5.3)
                ("identity", None, ORIG),
                ("deflate, zstd", None, ORIG),
                ("GZIP", "gzip", GZ),      # coding names are case-insensitive
                ("br;q=0.0, gzip;q=0.5", "gzip", GZ),
            ]
            for ae, coding, body in cases:
                hdrs = {} if ae is None else {"Accept-Encoding": ae}
                check_coding(fetch(srv.addr, "/a.txt", hdrs), coding, body,
                             f"Accept-Encoding: {ae!r}")
            h = fetch(srv.addr, "/a.txt", {"Accept-Encoding": "gzip"}, method="HEAD")
            check_eq((h.status, h.header("Content-Encoding"), h.header("Content-Length")),
                     (200, "gzip", str(len(GZ))), "HEAD with Accept-Encoding: gzip")
            check(vary_has_ae(h), "HEAD gzip: no Vary")
            # The .gz file asked for by name is just a file: no Content-Encoding.
            r = fetch(srv.addr, "/a.txt.gz", {"Accept-Encoding": "gzip"})
            check_eq((r.status, r.body, r.header("Content-Encoding")), (200, GZ, None),
                     "GET /a.txt.gz by name")


def test_precompressed_qvalue_preference():
    with temp_root() as root:
        variants_root(root)
        with start_eddy(root=root) as srv:
            check_coding(fetch(srv.addr, "/a.txt", {"Accept-Encoding": "gzip;q=1.0, br;q=0.5"}),
                         "gzip", GZ, "Accept-Encoding: gzip;q=1.0, br;q=0.5")


def test_precompressed_validators():
    with temp_root() as root:
        variants_root(root)
        with start_eddy(root=root) as srv:
            ident = fetch(srv.addr, "/a.txt")
            gz = fetch(srv.addr, "/a.txt", {"Accept-Encoding": "gzip"})
            br = fetch(srv.addr, "/a.txt", {"Accept-Encoding": "br"})
            tags = [r.header("ETag") for r in (ident, gz, br)]
            for t, name in zip(tags, ("identity", "gzip", "br")):
                check_strong_etag(t, f"{name} response")
            check_eq(len(set(tags)), 3, f"ETags of identity, gzip, br {tags}: not distinct")
            check(vary_has_ae(ident), "identity response of a file with variants: no Vary")
            r = fetch(srv.addr, "/a.txt", {"Accept-Encoding": "gzip", "If-None-Match": tags[1]})
            check_304(r, tags[1], "gzip If-None-Match: <gzip etag>")
            check(vary_has_ae(r), "gzip 304: no Vary")
            r = fetch(srv.addr, "/a.txt", {"If-None-Match": tags[0]})
            check_304(r, tags[0], "identity If-None-Match: <identity etag>")
            check(vary_has_ae(r), "identity 304: no Vary")
            # Another representation's tag does not match this one.
            check_coding(fetch(srv.addr, "/a.txt", {"Accept-Encoding": "gzip", "If-None-Match": tags[0]}),
                         "gzip", GZ, "gzip with If-None-Match: <identity etag>")
            # A range of the gzip representation is a range of the .gz bytes.
            r = fetch(srv.addr, "/a.txt", {"Accept-Encoding": "gzip", "Range": "bytes=0-3"})
            check_206(r, GZ, 0, 3, "gzip bytes=0-3")
            check_eq(r.header("Content-Encoding"), "gzip", "gzip 206 Content-Encoding")
            check(vary_has_ae(r), "gzip 206: no Vary")


def test_precompressed_stale_ignored():
    with temp_root() as root:
        put(root, "a.txt", ORIG, mtime=T0)
        put(root, "a.txt.gz", GZ, mtime=T0 - 60)    # older than a.txt: stale
        put(root, "a.txt.br", BR, mtime=T0 + 60)
        with start_eddy(root=root) as srv:
            r = fetch(srv.addr, "/a.txt", {"Accept-Encoding": "gzip"})
            check_eq((r.status, r.header("Content-Encoding")), (200, None), "stale .gz: status, coding")
            check(r.body == ORIG, f"stale .gz served: {short(r.body)}")
            check_coding(fetch(srv.addr, "/a.txt", {"Accept-Encoding": "br, gzip"}), "br", BR,
                         "fresh .br beside a stale .gz")


def test_no_variants_no_vary():
    with temp_root() as root:
        put(root, "b.txt", ORIG, mtime=T0)
        with start_eddy(root=root) as srv:
            for hdrs in ({}, {"Accept-Encoding": "gzip, br"}):
                r = fetch(srv.addr, "/b.txt", hdrs)
                check_full(r, ORIG, f"GET /b.txt {hdrs}")
                check(r.header("Vary") is None, f"GET /b.txt {hdrs}: Vary {r.header('Vary')!r}")
                check(r.header("Content-Encoding") is None, f"GET /b.txt {hdrs}: Content-Encoding")


# 7. Cache-Control.

def cache_control_responses(srv):
    full = fetch(srv.addr, "/c.txt")
    part = fetch(srv.addr, "/c.txt", {"Range": "bytes=0-3"})
    nm = fetch(srv.addr, "/c.txt", {"If-None-Match": full.header("ETag")})
    check_eq((full.status, part.status, nm.status), (200, 206, 304), "statuses")
    return {"200": full, "206": part, "304": nm}


def test_cache_control_flag():
    with temp_root() as root:
        put(root, "c.txt", pattern(100), mtime=T0)
        with start_eddy("--cache-control", "max-age=60", root=root) as srv:
            for name, r in cache_control_responses(srv).items():
                check_eq(r.header("Cache-Control"), "max-age=60", f"{name} Cache-Control")
            h = fetch(srv.addr, "/c.txt", method="HEAD")
            check_eq(h.header("Cache-Control"), "max-age=60", "HEAD Cache-Control")


def test_cache_control_default_absent():
    with temp_root() as root:
        put(root, "c.txt", pattern(100), mtime=T0)
        with start_eddy(root=root) as srv:
            for name, r in cache_control_responses(srv).items():
                check(r.header("Cache-Control") is None,
                      f"{name} has Cache-Control {r.header('Cache-Control')!r} by default")


# 8. Dotfiles.

def dotfiles_root(root):
    put(root, ".hidden", b"HIDDEN-CONTENT\n")
    put(root, "dir/.env", b"SECRET_KEY=dotenv-content\n")
    put(root, ".git/config", b"[core] git-config-content\n")
    put(root, "dir/visible.txt", b"visible\n")


def test_dotfiles_hidden_by_default():
    with temp_root() as root:
        dotfiles_root(root)
        with start_eddy(root=root) as srv:
            for path in ("/.hidden", "/dir/.env", "/.git/config", "/%2ehidden", "/dir/%2Eenv",
                         "/dir/x/../.env", "/.git/"):
                r = fetch(srv.addr, path)
                check_eq(r.status, 404, f"GET {path} status")
                check(b"content" not in r.body, f"GET {path} leaked the dotfile: {short(r.body)}")
            check_eq(fetch(srv.addr, "/dir/visible.txt").status, 200, "GET /dir/visible.txt")


def test_dotfiles_flag():
    with temp_root() as root:
        dotfiles_root(root)
        with start_eddy("--dotfiles", root=root) as srv:
            for path, body in (("/.hidden", b"HIDDEN-CONTENT\n"),
                               ("/dir/.env", b"SECRET_KEY=dotenv-content\n"),
                               ("/.git/config", b"[core] git-config-content\n")):
                check_full(fetch(srv.addr, path), body, f"--dotfiles GET {path}")


# 9. Directories.

def test_dir_redirect():
    with temp_root() as root:
        put(root, "dir/index.html", b"<p>dir index</p>\n")
        put(root, "a/b/c.txt", b"c\n")
        with start_eddy(root=root) as srv:
            for path, loc in (("/dir", "/dir/"), ("/dir?x=1&y=%20", "/dir/?x=1&y=%20"),
                              ("/a/b", "/a/b/"), ("/a", "/a/")):
                r = fetch(srv.addr, path)
                check_eq(r.status, 301, f"GET {path} status")
                check_eq(r.header("Location"), loc, f"GET {path} Location")
            r = fetch(srv.addr, "/dir", method="HEAD")
            check_eq((r.status, r.header("Location")), (301, "/dir/"), "HEAD /dir")


def test_dir_without_index_404():
    with temp_root() as root:
        put(root, "dir/a.txt", b"a\n")
        with start_eddy(root=root) as srv:
            for path in ("/dir/", "/"):
                r = fetch(srv.addr, path)
                check_eq(r.status, 404, f"GET {path} status (no index.html, no --autoindex)")
                check(b"a.txt" not in r.body, f"GET {path}: 404 lists the directory")


def test_dir_index_html():
    index = b"<!doctype html><p>the index of dir</p>\n"
    with temp_root() as root:
        put(root, "dir/index.html", index, mtime=T0)
        put(root, "dir/other.txt", b"other\n")
        for args in ((), ("--autoindex",)):
            with start_eddy(*args, root=root) as srv:
                r = fetch(srv.addr, "/dir/")
                check_full(r, index, f"GET /dir/ {args}")
                check_eq(media_type(r.header("Content-Type"))[0], "text/html", "Content-Type")
                check_strong_etag(r.header("ETag"), "GET /dir/")
                check_304(fetch(srv.addr, "/dir/", {"If-None-Match": r.header("ETag")}),
                          r.header("ETag"), "GET /dir/ If-None-Match")


def test_autoindex_listing():
    names = ["a.txt", "a<b>&c.txt", "with space.txt", "x\"quote'.txt"]
    with temp_root() as root:
        for n in names:
            put(root, f"dir/{n}", f"content of {n}\n".encode())
        put(root, "dir/sub/inner.txt", b"inner\n")
        put(root, "dir/.secret", b"secret\n")
        put(root, "dir/.hiddendir/x.txt", b"x\n")
        with start_eddy("--autoindex", root=root) as srv:
            r = fetch(srv.addr, "/dir/")
            check_eq(r.status, 200, "GET /dir/ status")
            mt, params = media_type(r.header("Content-Type"))
            check_eq(mt, "text/html", "listing media type")
            check_eq(r.header("Content-Length"), str(len(r.body)), "listing Content-Length")
            page = r.body.decode("utf-8")
            texts = [html.unescape(t) for t in re.findall(r">([^<>]*)<", page)]   # element text
            for n in names + ["sub"]:
                check(any(n in t for t in texts),
                      f"listing does not show {n!r} as text: {short(page, 400)}")
            check("a&lt;b&gt;&amp;c.txt" in page, "a<b>&c.txt not escaped as a&lt;b&gt;&amp;c.txt")
            check("<b>" not in page and "a<b>&c" not in page, f"raw a<b>&c.txt in the listing: {short(page, 400)}")
            check(".secret" not in page and ".hiddendir" not in page,
                  f"listing shows dotfiles: {short(page, 400)}")
            # The links work: each file's href, resolved against /dir/, serves it.
            hrefs = [html.unescape(h) for h in re.findall(r'href\s*=\s*"([^"]*)"', page)]
            hrefs += [html.unescape(h) for h in re.findall(r"href\s*=\s*'([^']*)'", page)]
            for n in names:
                target = None
                for h in hrefs:
                    url = urllib.parse.urljoin("/dir/", h)
                    if urllib.parse.unquote(urllib.parse.urlsplit(url).path) == f"/dir/{n}":
                        target = url
                check(target, f"no link to {n!r} among {hrefs}")
                target = urllib.parse.quote(target, safe="/%:@!$&'()*+,;=-._~?")
                check_full(fetch(srv.addr, target), f"content of {n}\n".encode(), f"link {target}")
            h = fetch(srv.addr, "/dir/", method="HEAD")
            check_eq((h.status, h.header("Content-Length")), (200, str(len(r.body))), "HEAD /dir/")
            check_eq(fetch(srv.addr, "/dir").status, 301, "GET /dir with --autoindex")
            r = fetch(srv.addr, "/")
            check_eq(r.status, 200, "GET / listing")
            check(b"dir" in r.body, "GET / listing lacks dir")


# 10. The root boundary.

def boundary_root(root):
    outside = root.parent / "outside"
    secret = b"TOP-SECRET-" + os.urandom(8).hex().encode() + b"\n"
    put(outside, "secret.txt", secret)
    put(root.parent, "secret.txt", secret)
    return outside, secret


def test_symlink_outside_root():
    with temp_root() as root:
        outside, secret = boundary_root(root)
        put(root, "index.html", b"inside\n")
        os.symlink(outside / "secret.txt", root / "abs-leak.txt")
        os.symlink("../outside/secret.txt", root / "rel-leak.txt")
        os.symlink("../outside", root / "outdir")
        put(root, "sub/keep.txt", b"keep\n")
        os.symlink("../../outside/secret.txt", root / "sub" / "deep-leak.txt")
        for args in ((), ("--autoindex", "--dotfiles")):
            with start_eddy(*args, root=root) as srv:
                for path in ("/abs-leak.txt", "/rel-leak.txt", "/outdir/secret.txt",
                             "/sub/deep-leak.txt", "/outdir/", "/outdir"):
                    for method in ("GET", "HEAD"):
                        r = fetch(srv.addr, path, method=method,
                                  headers={"Range": "bytes=0-99"} if method == "GET" else None)
                        check_eq(r.status, 404, f"{args} {method} {path} status")
                        check(secret[:20] not in r.body, f"{args} {method} {path} leaked the secret")
                        check(b"secret.txt" not in r.body, f"{args} {method} {path} listed outside")


def test_symlink_inside_root():
    with temp_root() as root:
        boundary_root(root)
        put(root, "real.txt", b"real content\n")
        put(root, "sub/file.txt", b"sub file\n")
        os.symlink("real.txt", root / "link.txt")
        os.symlink("../real.txt", root / "sub" / "up.txt")
        os.symlink("sub", root / "dirlink")
        with start_eddy(root=root) as srv:
            for path, body in (("/link.txt", b"real content\n"), ("/sub/up.txt", b"real content\n"),
                               ("/dirlink/file.txt", b"sub file\n")):
                check_full(fetch(srv.addr, path), body, f"GET {path}")


def test_dotdot_no_escape():
    with temp_root() as root:
        outside, secret = boundary_root(root)
        put(root, "index.html", b"inside\n")
        put(root, "sub/x.txt", b"x\n")
        paths = ["/../secret.txt", "/../outside/secret.txt", "/%2e%2e/secret.txt",
                 "/%2E%2E/secret.txt", "/.%2e/secret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
                 "/sub/../../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt", "/./.././secret.txt",
                 "//../secret.txt", "/sub/..%2f..%2fsecret.txt", "/..\\secret.txt",
                 "/%2e%2e%5csecret.txt", "/sub/../../outside/secret.txt", "/..;/secret.txt",
                 "/sub/.%2E/.%2E/outside/secret.txt"]
        with start_eddy("--dotfiles", "--autoindex", root=root) as srv:
            for path in paths:
                r = fetch(srv.addr, path)
                check(secret[:20] not in r.body, f"GET {path} leaked a file outside the root")
                check(r.status in (400, 403, 404), f"GET {path}: status {r.status}")
            for target in ("http://t/../secret.txt", "http://t/%2e%2e/secret.txt"):
                r = fetch(srv.addr, target)
                check(secret[:20] not in r.body, f"GET {target} leaked a file outside the root")
                check(r.status in (400, 403, 404), f"GET {target}: status {r.status}")
            r = fetch(srv.addr, "/../")
            check(b"secret.txt" not in r.body and b"outside" not in r.body,
                  f"GET /../ lists the parent: {short(r.body)}")


# 11. MIME types.

MIME = [   # extension, media type, charset=utf-8 required (True), forbidden (False), either (None)
    ("html", "text/html", True), ("css", "text/css", True), ("js", "text/javascript", True),
    ("mjs", "text/javascript", True), ("json", "application/json", None),
    ("svg", "image/svg+xml", None), ("wasm", "application/wasm", False),
    ("png", "image/png", False), ("jpg", "image/jpeg", False), ("webp", "image/webp", False),
    ("avif", "image/avif", False), ("woff2", "font/woff2", False), ("txt", "text/plain", True),
    ("pdf", "application/pdf", False), ("zzqq", "application/octet-stream", False),
]


def test_mime_types():
    with temp_root() as root:
        for ext, _, _ in MIME:
            put(root, f"f.{ext}", f"file .{ext}\n".encode())
        with start_eddy(root=root) as srv:
            for ext, want, charset in MIME:
                r = fetch(srv.addr, f"/f.{ext}")
                check_eq(r.status, 200, f"/f.{ext} status")
                value = r.header("Content-Type")
                mt, params = media_type(value)
                check_eq(mt, want, f"/f.{ext} Content-Type {value!r}")
                if charset is True:
                    check_eq(params.get("charset"), "utf-8", f"/f.{ext} charset in {value!r}")
                elif charset is False:
                    check("charset" not in params, f"/f.{ext}: charset on a binary type {value!r}")
                elif "charset" in params:
                    check_eq(params["charset"], "utf-8", f"/f.{ext} charset in {value!r}")


# 12. Slow readers.

def test_slow_readers():
    small = b"small file, answered at once\n"
    big_size = 32 << 20
    with temp_root() as root:
        with open(root / "big.bin", "wb") as f:
            f.truncate(big_size)
        put(root, "small.txt", small)
        with start_eddy(root=root) as srv:
            slow, firsts = [], []
            stop = threading.Event()
            got = [0] * 20

            def trickle():   # the first ten read 256 bytes every 0.1 s
                while not stop.is_set():
                    for i, s in enumerate(slow[:10]):
                        try:
                            chunk = s.recv(256)
                        except (BlockingIOError, InterruptedError):
                            continue
                        except OSError:
                            continue
                        if got[i] < 16:
                            firsts[i] += chunk[:16 - got[i]]
                        got[i] += len(chunk)
                    stop.wait(0.1)

            reader = threading.Thread(target=trickle, daemon=True)
            try:
                for _ in range(20):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    slow.append(s)
                    firsts.append(b"")
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)   # before connect
                    s.settimeout(IO_TIMEOUT)
                    s.connect(srv.addr)
                    s.sendall(request_bytes("GET", "/big.bin"))
                    s.setblocking(False)
                reader.start()
                t0 = time.monotonic()
                worst = 0.0
                for i in range(20):
                    t = time.monotonic()
                    r = fetch(srv.addr, "/small.txt", timeout=3)
                    took = time.monotonic() - t
                    worst = max(worst, took)
                    check_full(r, small, f"GET /small.txt #{i} beside 20 slow readers")
                    check(took < 0.5, f"GET /small.txt #{i} took {took:.2f} s beside 20 slow readers")
                    time.sleep(max(0.0, 0.15 - took))
                while time.monotonic() - t0 < 3:
                    time.sleep(0.05)
                stop.set()
                reader.join(2)
                srv.check_alive()
                for i, s in enumerate(slow[10:], 10):   # the ones that never read
                    try:
                        firsts[i] = s.recv(16)
                    except BlockingIOError:
                        pass
                for i, f in enumerate(firsts):
                    check(f.startswith(b"HTTP/1.1 200"),
                          f"slow client #{i} has no response head after 3 s: {short(f)}")
                check(all(g < big_size for g in got), "a slow reader got the whole file")
            finally:
                stop.set()
                if reader.is_alive():
                    reader.join(2)
                for s in slow:
                    with contextlib.suppress(OSError):
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    with contextlib.suppress(OSError):
                        s.close()
            time.sleep(0.2)
            srv.check_alive()
            check_full(fetch(srv.addr, "/small.txt"), small, "GET /small.txt after the slow readers left")


# ----------------------------------------------------------------- runner --

def all_tests():
    return [(name[len("test_"):], fn) for name, fn in globals().items()
            if name.startswith("test_") and callable(fn)]


if __name__ == "__main__":
    sys.exit(run.main(all_tests(), doc=__doc__, need_example=False))
