#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (run from the repo root:
python3 fuzz/gen_corpus.py).  Seeds are small and realistic; libFuzzer
grows its own copy in build/fuzz/corpus/, never these."""
import os
import shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
H = b"Host: t\r\n"
shutil.rmtree(ROOT, ignore_errors=True)  # the seeds are exactly what follows


def req(line, *fields, body=b""):
    return line.encode() + b"\r\n" + H + b"".join(f.encode() + b"\r\n" for f in fields) + b"\r\n" + body


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------ fuzz_request --
R = {
    "get_root": req("GET / HTTP/1.1"),
    "pipelined": req("GET /a.txt HTTP/1.1") + req("HEAD /index.html HTTP/1.1")
    + req("GET /echo?x=1&y=2 HTTP/1.1", "X-A: b", "Cookie: c=d"),
    "chunked_post": req("POST /echo HTTP/1.1", "Transfer-Encoding: chunked",
                        body=b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\n")
    + req("GET /echo HTTP/1.1"),
    "content_length_post": req("POST /echo HTTP/1.1", "Content-Length: 5", body=b"hello")
    + req("GET / HTTP/1.1", "Connection: close"),
    "smuggle_cl_te": req("POST / HTTP/1.1", "Content-Length: 4", "Transfer-Encoding: chunked",
                         body=b"0\r\n\r\nGET /.env HTTP/1.1\r\nHost: t\r\n\r\n"),
    "smuggle_te_cl": req("POST / HTTP/1.1", "Transfer-Encoding: chunked", "Content-Length: 40",
                         body=b"0\r\n\r\n") + req("GET /echo HTTP/1.1"),
    "smuggle_te_not_last": req("POST / HTTP/1.1", "Transfer-Encoding: chunked, identity",
                               body=b"0\r\n\r\n"),
    "smuggle_te_twice": req("POST / HTTP/1.1", "Transfer-Encoding: chunked",
                            "Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
    "smuggle_dup_cl": req("POST / HTTP/1.1", "Content-Length: 3", "Content-Length: 30",
                          body=b"abc"),
    "smuggle_obs_fold": req("GET / HTTP/1.1", "X-A: a", " folded: b"),
    "smuggle_space_before_colon": req("GET / HTTP/1.1", "Transfer-Encoding : chunked"),
    "smuggle_bare_lf": b"GET / HTTP/1.1\nHost: t\n\nGET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    "te_http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunk_size_overflow": req("POST /echo HTTP/1.1", "Transfer-Encoding: chunked",
                               body=b"fffffffffffffffff\r\nx\r\n0\r\n\r\n"),
    "traversal": req("GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1") + req("GET /..%2f..%2fetc/passwd HTTP/1.1")
    + req("GET /sub/../../a.txt HTTP/1.1") + req("GET /%2E%2e/.env HTTP/1.1"),
    "dotfile": req("GET /.env HTTP/1.1") + req("GET /sub/%2eenv HTTP/1.1"),
    "bad_escape": req("GET /a%zz HTTP/1.1") + req("GET /a%00b HTTP/1.1"),
    "ranges": req("GET /data.bin HTTP/1.1", "Range: bytes=0-99,200-299,-50")
    + req("GET /a.txt HTTP/1.1", "Range: bytes=5-")
    + req("GET /a.txt HTTP/1.1", "Range: bytes=1000-2000"),
    "range_if_range": req("GET /a.txt HTTP/1.1", "Range: bytes=0-3",
                          "If-Range: Sun, 06 Nov 1994 08:49:37 GMT")
    + req("GET /a.txt HTTP/1.1", "Range: bytes=0-3", 'If-Range: "nope"'),
    "conditional": req("GET /index.html HTTP/1.1", "If-None-Match: *")
    + req("GET /index.html HTTP/1.1", "If-Modified-Since: Sunday, 06-Nov-94 08:49:37 GMT")
    + req("GET /index.html HTTP/1.1", 'If-Match: "x", W/"y"')
    + req("GET /index.html HTTP/1.1", "If-Unmodified-Since: Sun Nov  6 08:49:37 1994"),
    "accept_encoding": req("GET /a.txt HTTP/1.1", "Accept-Encoding: gzip;q=0.5, br;q=1")
    + req("GET /a.txt HTTP/1.1", "Accept-Encoding: identity;q=1, *;q=0")
    + req("GET /a.txt HTTP/1.1", "Accept-Encoding: x-gzip, br;q=0"),
    "expect_continue": req("POST /echo HTTP/1.1", "Expect: 100-continue", "Content-Length: 4"),
    "expect_bad": req("POST /echo HTTP/1.1", "Expect: something", "Content-Length: 4", body=b"abcd"),
    "unknown_method": req("BREW /pot HTTP/1.1") + req("GET / HTTP/1.1"),
    "http10": b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
    "http09": b"GET /\r\n\r\n",
    "absolute_form": b"GET http://t/a.txt?q HTTP/1.1\r\nHost: t\r\n\r\n",
    "options": req("OPTIONS * HTTP/1.1") + req("OPTIONS /a.txt HTTP/1.1") + req("DELETE /a.txt HTTP/1.1"),
    "connect": b"CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n",
    "host_missing_dup": b"GET / HTTP/1.1\r\n\r\n" + req("GET / HTTP/1.1", "Host: u"),
    "big_header": req("GET / HTTP/1.1", "X-Big: " + "a" * 2100),
    "many_headers": req("GET / HTTP/1.1", *["X-%d: v" % i for i in range(25)]),
    "long_target": req("GET /" + "b" * 1100 + " HTTP/1.1"),
    "directories": req("GET /sub HTTP/1.1") + req("GET /list/ HTTP/1.1") + req("GET /list?x=1 HTTP/1.1")
    + req("GET /list/deeper/ HTTP/1.1"),
    "h2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "version_3": b"GET / HTTP/3.0\r\nHost: t\r\n\r\n",
    "double_space": b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
    "fragment": req("GET /a.txt#frag HTTP/1.1"),
    "body_too_large": req("POST /echo HTTP/1.1", "Content-Length: 100000"),
}
for name, data in R.items():
    put("fuzz_request", name, data)


# --------------------------------------------------------------- fuzz_conn --
def op(o, a):
    return (o << 5) | a


PUSH_ALL = op(0, 31)
RUN = op(6, 5)
EOF_ = op(6, 0)
RESET = op(6, 1)
NEWCONN = op(6, 2)
NEXTCONN = op(6, 3)
SHUTDOWN = op(6, 4)


def adv(ms):
    table = [0, 0, 1, 5, 10, 50, 100, 250, 499, 500, 999, 1000, 1001, 1500, 1999, 2000, 2001,
             2500, 2999, 3000, 3001, 3999, 4000, 4001, 4999, 5000, 5001, 6000, 8000, 10000, 20000,
             75000]
    return op(5, table.index(ms))


def script(payload, ops):
    assert len(ops) < 256
    return payload + bytes(ops) + bytes([len(ops)])


G = req("GET / HTTP/1.1")
C = {
    "plain": script(G, []),
    "pieces_eagain": script(G + req("GET /a.txt HTTP/1.1"),
                            [op(0, 3), op(2, 0), op(1, 7), RUN, op(0, 20), op(2, 0), RUN]),
    "bytewise": script(req("GET /hi HTTP/1.1"), [op(1, 31), op(1, 31), RUN]),
    "slow_pipelined": script(req("GET /slow HTTP/1.1", "X-Trace: 42") + G,
                             [PUSH_ALL, RUN, adv(999), adv(1)]),
    "slowbig_short_writes": script(req("GET /slowbig HTTP/1.1") + G,
                                   [PUSH_ALL, RUN, op(3, 6), adv(1000), op(4, 1), RUN, op(4, 0), RUN]),
    "slow_abort": script(req("GET /slow HTTP/1.1"), [PUSH_ALL, RUN, RESET, RUN, adv(2000)]),
    "slow_eof": script(req("GET /slow?200 HTTP/1.1"), [PUSH_ALL, EOF_, RUN, adv(250)]),
    "hold_zombie": script(req("GET /hold?/a.txt HTTP/1.1", "X-Trace: 7"),
                          [PUSH_ALL, RUN, RESET, RUN, adv(500)]),
    "hold_file": script(req("GET /hold?/list/ HTTP/1.1") + G, [PUSH_ALL, RUN, adv(500)]),
    "big_short_writes": script(req("GET /big HTTP/1.1") + G,
                               [op(3, 5), PUSH_ALL, RUN, op(4, 1), adv(100), op(4, 0), RUN]),
    "file_short_writes": script(req("GET /data.bin HTTP/1.1", "Range: bytes=0-99,1000-1099,-10"),
                                [op(3, 4), PUSH_ALL, RUN]),
    "header_timeout": script(b"GET / HTTP/1.1\r\nHo", [PUSH_ALL, RUN, adv(2999), adv(1)]),
    "keepalive_timeout": script(G, [PUSH_ALL, RUN, adv(4999), adv(1)]),
    "send_timeout": script(req("GET /big HTTP/1.1"), [op(4, 1), PUSH_ALL, RUN, adv(3999), adv(1)]),
    "linger": script(req("GET /nope%zz HTTP/1.1") + b"more bytes the client still sends",
                     [op(0, 30), RUN, op(0, 31), RUN, adv(2000)]),
    "shutdown_in_flight": script(req("GET /slow HTTP/1.1") + G,
                                 [PUSH_ALL, RUN, SHUTDOWN, RUN, NEWCONN, adv(1000)]),
    "two_conns": script(req("GET /a.txt HTTP/1.1") + req("GET /big HTTP/1.1"),
                        [op(0, 16), NEWCONN, op(3, 6), op(0, 31), RUN, NEXTCONN, RUN]),
    "chunked_pieces": script(req("POST /hi HTTP/1.1", "Transfer-Encoding: chunked",
                                 body=b"a\r\n0123456789\r\n0\r\n\r\n") + G,
                             [op(0, 17), op(0, 2), op(2, 0), op(0, 4), RUN, op(0, 31), RUN]),
    "body_echo_pieces": script(req("POST /echo HTTP/1.1", "Transfer-Encoding: chunked",
                                   body=b"a\r\n0123456789\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n") + G,
                               [op(0, 17), op(0, 2), op(2, 0), op(0, 4), RUN, op(0, 31), RUN]),
    "body_held": script(req("POST /slowbody?200 HTTP/1.1", "Content-Length: 10", body=b"0123456789") + G,
                        [op(0, 40), op(0, 3), RUN, op(0, 31), RUN, adv(1000), RUN]),
    "expect_continue": script(req("POST /hi HTTP/1.1", "Expect: 100-continue", "Content-Length: 3")
                              + b"abc", [op(0, 31), RUN]),
    "half_close_pipeline": script(G + G + G, [op(4, 1), PUSH_ALL, EOF_, RUN, op(4, 0), RUN]),
}
for name, data in C.items():
    put("fuzz_conn", name, data)

# ---------------------------------------------------------------- fuzz_api --
# A flags byte (bit 0: reset the connections before freeing the server),
# then a byte stream of ops (see the comment at the top of fuzz_api.c); these
# helpers spell them.  Requests get ids 0, 1, ... in the order sent; an op on
# a request names it by its place among those whose handler ran.
GET_, HEAD_, POST_ = 0, 1, 2
HOLD, BODY, FILE_ = 0, 2, 3


def request(method=GET_, http10=False, kind=HOLD, close=False, body=0, act=b"", path=0):
    """One request of a send op: flags, body length / 4, 8 bytes of what its
    handler does (two accessor arguments, then `act`: bit 0 of its first
    byte an abort callback, bit 1 a drain callback, (byte >> 2) % 4 calls,
    then their bytes, which the callbacks' calls reuse), a file path index
    for FILE_."""
    f = method | (4 if http10 else 0) | (kind << 3) | (0x40 if close else 0)
    out = bytes([f])
    if method == POST_:
        out += bytes([body // 4])
    act = (bytes([0, 7]) + act + bytes(8))[:8]
    out += act
    if kind == FILE_:
        out += bytes([path])
    return out


def send(conn, *reqs):
    assert 1 <= len(reqs) <= 3
    return bytes([0, conn, len(reqs) - 1]) + b"".join(reqs)


def pick(op, i, *args):
    return bytes([op, i]) + bytes(args)


NAME = {n: i for i, n in enumerate(["Content-Length", "Transfer-Encoding", "Connection",
        "Keep-Alive", "Upgrade", "TE", "Trailer", "Proxy-Connection", "Date", "Server",
        "Content-Type", "X-A", "Set-Cookie", "ETag", "Cache-Control", "Location"])}
VALUE = {v: i for i, v in enumerate(["", "1", "chunked", "close", "keep-alive", "0",
         "text/html", "a, b", "v\tw", " lead", "trail ", "\ttab", "a\r\nX-Injected: 1", "a\nb"])}
STATUS = {s: i for i, s in enumerate([200, 201, 204, 206, 205, 299, 301, 304, 404, 418, 500,
          599, 600, 999, 1000, 199, 100, 0, -1])}
CTYPE = {c: 70 + i for i, c in enumerate(["text/plain", "application/octet-stream", "",
         "a/b; charset=utf-8", "x\r\nX-Injected: 1", "x\n", "\ttab", "trail "])}
CTYPE[None] = 0
LENGTH = {n: i for i, n in enumerate([0, 1, 2, 3, 10, 100, 1000, 4095, 16384, 32768, 65535,
          65536, 65537, 70000, 131072, 150000])}
SLEN = {-1: 0, 0: 2, 1: 3, 10: 4, 100: 5, 5000: 6, 65536: 7, 70000: 8, 200000: 9}
PATH = {p: i for i, p in enumerate(["/", "/a.txt", "/data.bin", "/index.html", "/sub", "/sub/",
        "/list/", "/nope", "/.env", "/a%2etxt", "/%zz", "/a%00b"])}
ADV = {ms: i for i, ms in enumerate([0, 1, 100, 1999, 2000, 2001, 2999, 3000, 3999, 4000, 4001,
       5000, 6000, 10000, 60000, 100000])}


def field(i, name, value, raw_name=None):
    n = bytes([NAME[name], 0]) if raw_name is None else bytes([200, len(raw_name)]) + raw_name
    return pick(1, i) + n + bytes([VALUE[value], 0])


def respond(i, status=200, ctype="text/plain", length=100):
    return pick(2, i, STATUS[status], CTYPE[ctype], LENGTH[length])


def files(i, path):
    return pick(3, i, PATH[path])


def stream_start(i, status=200, ctype="text/plain", length=-1):
    return pick(4, i, STATUS[status], CTYPE[ctype], SLEN[length])


def write(i, n):
    return pick(5, i, LENGTH[n])


def end(i):
    return pick(6, i)


def on_drain(i, act=b"\x01\x04\x05"):
    return pick(7, i, 1) + (act + bytes(8))[:8]


def on_abort(i, act=b""):
    return pick(8, i, 1) + (act + bytes(8))[:8]


def accessors(i, header=0, room=7):
    return pick(9, i, header, room)


def mock(conn, event, arg=0):
    return bytes([10, conn, event | arg << 3])


BLOCK, UNBLOCK, SHORT, RESET_, EOF__, RESET_AFTER, EAGAIN_ = range(7)
RUN_ = bytes([12])
NEWCONN_ = bytes([13])
SHUTDOWN_ = bytes([14])


def adv_api(ms):
    return bytes([11, ADV[ms]])


API = {
    "hold_respond": send(0, request()) + RUN_ + field(0, "X-A", "1") + field(0, "Set-Cookie", "a, b")
    + field(0, "Content-Length", "1") + field(0, "X-A", "a\r\nX-Injected: 1") + respond(0) + RUN_,
    "answer_in_handler": send(0, request(act=bytes([4, 1, STATUS[201], CTYPE[None], LENGTH[10]])),
                              request(method=HEAD_)) + RUN_ + respond(1, 200, "text/plain", 1000) + RUN_,
    "stream_chunked": send(0, request()) + RUN_ + stream_start(0) + write(0, 1000) + write(0, 65535)
    + mock(0, BLOCK) + RUN_ + write(0, 70000) + write(0, 10) + on_drain(0) + mock(0, UNBLOCK) + RUN_
    + write(0, 100) + end(0) + RUN_,
    "stream_known_length": send(0, request(), request()) + RUN_ + stream_start(0, 200, None, 100)
    + write(0, 1000) + write(0, 100) + write(0, 1) + write(0, 0) + end(0) + RUN_ + respond(1) + RUN_,
    "stream_short": send(0, request(), request()) + RUN_ + stream_start(0, 200, None, 5000)
    + write(0, 1000) + end(0) + RUN_ + accessors(1) + RUN_,
    "stream_http10": send(0, request(http10=True), request(http10=True)) + RUN_ + stream_start(0)
    + write(0, 1000) + write(0, 3) + end(0) + RUN_,
    "stream_head_204": send(0, request(method=HEAD_), request()) + RUN_ + stream_start(0, 200, "", 10)
    + write(0, 10) + write(0, 10) + end(0) + RUN_ + stream_start(1, 204) + write(1, 100) + end(1) + RUN_,
    "stale_calls": send(0, request(), request()) + RUN_ + respond(0) + RUN_ + field(0, "X-A", "1")
    + respond(0) + files(0, "/") + stream_start(0) + write(0, 1) + end(0) + on_drain(0) + on_abort(0)
    + accessors(0) + accessors(1) + respond(1) + RUN_,
    "abort_callbacks": send(0, request(act=bytes([1, 1, 1, STATUS[200], 0, 0]))) + NEWCONN_
    + send(1, request()) + RUN_ + on_abort(1, bytes([2, 9, 0, 7, 1, STATUS[200], 0, 0]))
    + mock(0, RESET_) + mock(1, EOF__) + RUN_ + accessors(0) + accessors(1) + RUN_,
    "late_abort": send(0, request()) + RUN_ + mock(0, RESET_) + RUN_ + on_abort(0) + accessors(0),
    "files_respond": send(0, request(), request(method=HEAD_), request(method=POST_, body=40))
    + RUN_ + field(0, "ETag", "1") + files(0, "/data.bin") + RUN_ + files(1, "/%zz") + files(1, "/sub")
    + RUN_ + files(2, "/a.txt") + RUN_,
    "body_route": send(0, request(method=POST_, kind=BODY, body=400), request(kind=FILE_, path=1))
    + RUN_ + accessors(0, 3) + respond(0, 200, "application/octet-stream", 65536) + RUN_,
    "shutdown_in_flight": send(0, request()) + NEWCONN_ + RUN_ + SHUTDOWN_ + stream_start(0)
    + write(0, 100) + end(0) + RUN_ + adv_api(2000),
    "field_burst": send(0, request()) + RUN_ + bytes([15, 0, 69]) + field(0, "X-A", "1")
    + respond(0) + RUN_,
    "send_timeout": send(0, request()) + RUN_ + mock(0, BLOCK) + stream_start(0) + write(0, 65536)
    + write(0, 100) + on_abort(0) + adv_api(4000) + adv_api(1),
    "short_writes_reset": send(0, request(), request()) + mock(0, SHORT, 3) + mock(0, RESET_AFTER, 5)
    + RUN_ + stream_start(0) + write(0, 16384) + RUN_ + write(0, 1000) + end(0) + RUN_,
    "bad_content_type": send(0, request()) + RUN_ + respond(0, 200, "x\r\nX-Injected: 1")
    + stream_start(0, 200, "x\n") + respond(0, 600, "", 10) + RUN_,
}
RESET_FIRST = {"abort_callbacks", "stream_http10", "files_respond", "stream_chunked"}
for name, data in API.items():
    put("fuzz_api", name, bytes([name in RESET_FIRST]) + data)

# --------------------------------------------------------------- fuzz_path --
P = {
    "root": b"/",
    "index": b"/index.html",
    "encoded_dots": b"/%2e%2e/%2e%2e/etc/passwd",
    "encoded_slash": b"/..%2f..%2fsecret/%2E%2E%2Fx",
    "dot_segments": b"/a/./b/../../../c/",
    "dotfile": b"/.env",
    "nested_dotfile": b"/a/.git/config",
    "spaces": b"/hello%20world.txt",
    "bad_escape": b"/bad%zz",
    "encoded_nul": b"/nul%00.html",
    "slashes": b"//a///b/",
    "long_segment": b"/" + b"s" * 300,
    "mixed_case_escape": b"/%41%62%2F%2e%2E",
}
for name, data in P.items():
    put("fuzz_path", name, data)

# ------------------------------------------------------------- fuzz_fields --
F = {
    "typical": "5000 7\nbytes=0-499,1000-,-200\n\"abc\"\n\"abc\", W/\"def\"\n*\n"
               "Sun, 06 Nov 1994 08:49:37 GMT\nSunday, 06-Nov-94 08:49:37 GMT\n"
               "gzip;q=0.8, br, *;q=0\nSun Nov  6 08:49:37 1994\n784111777",
    "overlapping_ranges": "100 1\nbytes=0-10,5-20,21-30,90-200,-5\nSun, 06 Nov 1994 08:49:37 GMT",
    "suffix_and_unsatisfiable": "10 0\nbytes=-0,20-30\n",
    "weak_tags": "64 9\nbytes= 1-2 , , 4-5\nW/\"x\"\nW/\"x\", \"y\",,\nW/\"x\"\n\n\n"
                 "identity;q=0, x-gzip;q=0.001, BR;Q=1.000\n",
    "asctime_dates": "1 1\n\n\n\n\nThu Feb 29 23:59:60 2024\nMon, 31 Dec 1990 00:00:00 GMT\n\n"
                     "Sunday, 01-Jan-70 00:00:00 GMT\n-62135596800",
    "range_flood": "1000 0\nbytes=" + ",".join("%d-%d" % (i * 10, i * 10 + 1) for i in range(17)),
    "max_numbers": "18446744073709551615 15\nbytes=18446744073709551614-,0-18446744073709551615\n"
                   "W/\"a\"\n\n\nFri, 31 Dec 9999 23:59:59 GMT\n\n*;q=0.5\n\n253402300799",
}
for name, data in F.items():
    put("fuzz_fields", name, data.encode())

# ----------------------------------------------------------------- fuzz_h2 --
# Op bytes (OP << 5 | ARG) and the bytes each takes; see fuzz/fuzz_h2.c.
def op(o, arg):
    return bytes([o << 5 | arg])


RUN, ADV_500, ADV_1000, ADV_5000 = op(6, 0), op(5, 6), op(5, 8), op(5, 19)
H2 = {
    # GET / (END_STREAM), then run
    "get_index": op(0, 0) + b"\x04" + RUN,
    # several streams at once, HEAD and a range among them
    "streams": op(0, 1) + b"\x04" + op(0, 13) + b"\x0d" + op(0, 1) + b"\x0c" + op(0, 7) + b"\x04" + RUN,
    # POST /echo with two DATA frames, the second ending the stream
    "post_echo": op(0, 8) + b"\x02" + op(1, 2) + op(1, 8 | 1) + RUN,
    # a held request, the client resets it, time passes
    "slow_reset": op(0, 2) + b"\x04" + RUN + op(2, 4) + ADV_1000,
    # /hold answered after the client left (no abort callback)
    "hold_zombie": op(0, 4) + b"\x04" + RUN + op(4, 6) + ADV_1000,
    # a big answer into blocked, then short writes
    "big_blocked": op(0, 6) + b"\x04" + op(4, 0) + RUN + op(4, 1) + op(4, 2) + RUN + ADV_500,
    # the client never opens its window: WINDOW_UPDATE 0 streams, send timeout
    "zero_window": op(2, 1) + b"\x00\x04\x00\x00\x00\x00" + op(0, 13) + b"\x04" + RUN + ADV_5000,
    # a split header block (HEADERS + CONTINUATION), bytewise
    "continuation_bytewise": op(4, 7) + op(0, 0) + b"\x44" + RUN,
    # rapid reset, and a PING flood
    "rapid_reset": op(7, 31) + RUN,
    "ping_flood": op(2, 24) + op(2, 24) + op(2, 24) + RUN,
    # a 3000-byte field (431), an uppercase name, te: gzip
    "bad_fields": op(0, 0) + b"\x1c" + op(0, 0) + b"\x34" + op(0, 0) + b"\x3c" + RUN,
    # graceful shutdown with a held request, a second connection
    "shutdown": op(0, 2) + b"\x04" + op(6, 1) + op(0, 0) + b"\x04" + op(6, 3) + RUN + ADV_1000,
    # garbage after the preface
    "garbage": op(3, 15) + b"\x00\x00\x05\x09\x00\x00\x00\x00\x01" + b"junk!" + b"\xff\x01" + RUN,
    # idle: the keep-alive timeout sends GOAWAY
    "idle": op(0, 0) + b"\x04" + RUN + ADV_5000 + op(5, 20),
}
for name, data in H2.items():
    put("fuzz_h2", name, data)

if __name__ == "__main__":
    total = sum(len(fs) for _, _, fs in os.walk(ROOT))
    print("wrote %d seeds under %s" % (total, ROOT))


# ------------------------------------------------------------- fuzz_config --
# Configuration files: good ones (flags' keys, sites, aliases) and broken
# ones (many errors, a NUL escape and a second document, a syntax error);
# proxy*.yaml: proxy paths with every key, the proxy key of the one site,
# and proxy mistakes.
CONFIG = {
    'aliases.yaml': b'sites:\n  - names: [a.test]\n    headers: &h {set: {X-A: "1"}, remove: X-B}\n    paths:\n      - &p {path: /, respond: {status: 204}, headers: *h}\n  - default: true\n    headers: *h\n    paths: [*p]\n',
    'errors.yaml': b'bogus: 1\nmax-body: x\nno-http2: yes\nsites:\n  - names: [a.test, A.TEST., "b.test:80"]\n    paths:\n      - path: nope\n        respond: {status: 99}\n      - path: /r\n        redirect: {status: 300}\n        files: {dotfiles: true}\n      - path: /h\n        headers: {set: {Content-Length: "1", "Bad Name": v, X-L: [a, b]}}\n  - default: true\n  - default: true\n    acme: true\nroot: www\n',
    'flags.yaml': b'# the one site of flags\nlisten: [127.0.0.1:8080, "[::1]:8081"]\nroot: www\nindex: [index.html, home.html]\ndotfiles: false\nno-http2: true\nmax-body: 1048576\nheader-timeout: 2.5\nheader: "X-Frame-Options: DENY"\ndelay: /sleep=0.5\n',
    'odd.yaml': b'listen: "a\\0b"\nheader: "X: \\e\\x01"\nsites: [{names: [], paths: {path: /}}]\n---\nmore: [\n',
    'sites.yaml': b'listen: 127.0.0.1:8080\nlisten-tls: 127.0.0.1:8443\nno-match: 404\nsites:\n  - names: [a.test, "*.b.test"]\n    listen: [127.0.0.1:8443]\n    tls:\n      - {cert: a.pem, key: a.key}\n    headers:\n      set: {Cache-Control: no-store}\n      add: {Link: ["</a>; rel=preload", "</b>; rel=preload"]}\n      remove: [Server-Timing]\n    limits: {max-body: 1000, send-timeout: 30, body-timeout: 0.5}\n    paths:\n      - path: /\n        files: {root: /srv/a, autoindex: true, index: [index.html], precompressed: false}\n      - path: /old\n        redirect: {to: "https://a.test/new", status: 301, append-path: true}\n      - path: /health\n        respond: {status: 200, body: "ok\\n", type: text/plain}\n        limits: {max-body: 10}\n  - names: c.test\n    acme: true\n',
    'syntax.yaml': b'key: "unclosed\n\t- tab\n',
    'proxy.yaml': b'sites:\n  - default: true\n    paths:\n      - path: /api\n        proxy:\n          to: [http://127.0.0.1:9, "unix:/run/app.sock"]\n          balance: least-conn\n          host: api.internal\n          strip-prefix: true\n          forwarded: both\n          trust: [10.0.0.0/8, "::1"]\n          keepalive: off\n          max-conns: 10\n          idle-timeout: 0.5\n          connect-timeout: 1\n          first-byte-timeout: 30\n          read-timeout: 30\n          tunnel-timeout: 600\n          max-fails: 2\n          fail-timeout: 5\n          health: /health\n          health-interval: 2\n      - path: /api/v2\n        headers: {set: {X-V: "2"}}\n      - path: /\n        proxy: {to: "http://[::1]:8080", keepalive: 64}\n',
    'proxy_flags.yaml': b'proxy: ["/a=http://127.0.0.1:9,unix:/run/a.sock", "/=http://[::1]:8080"]\nroot: www\ndelay: /sleep=1\n',
    'proxy_errors.yaml': b'proxy: ["a=http://x", "/b=ftp://y"]\nsites:\n  - default: true\n    paths:\n      - path: /b\n        proxy: {to: "https://x", balance: random, forwarded: X, keepalive: 0, health: h, trust: [1.2.3.4/40], health-interval: 1}\n        files: {root: www}\n      - path: /c\n        proxy: {max-fails: 0}\n'
}
for name, data in CONFIG.items():
    put("fuzz_config", name, data)


# -------------------------------------------------------------- fuzz_proxy --
# Byte 0 the client's request, byte 1 flags, then the backend's raw bytes,
# then op bytes and their count (see the comment at the top of
# fuzz_proxy.c).  Every response names a field X-Backend-Marker: eddy's own
# 502 must not carry it.
GET, HEAD, POST_CL, POST_CHUNKED, UPGRADE, HTTP10, PUT_EXPECT, DELETE_CLOSE = range(8)
NO_KEEPALIVE = 16
STAYS, FIN, CLOSE, RST = 0, 1, 2, 3      # how the backend ends
STRICT, BLOCKED = 4, 8
REPEATS = [1, 2, 3, 5, 10, 20, 50, 98, 99, 100, 150, 200, 500, 700, 1000, 2000]
ADVANCES = [0, 1, 5, 50, 100, 199, 200, 201, 250, 299, 300, 301, 350, 399, 400, 401, 450, 499,
            500, 501, 600, 700, 999, 1000, 1001, 1200, 1500, 2000, 3000, 5000, 10000, 20000]


def pop(o, a):
    return bytes([o << 5 | a])


def piece(n):                            # op 0: the next n bytes: 1..16, or 48*k up to 720
    assert 1 <= n <= 16 or (n % 48 == 0 and n <= 720)
    return pop(0, n - 1) if n <= 16 else pop(0, 15 + n // 48)


def take(n):                             # the next n bytes in as few pieces as there are
    out = b""
    while n >= 48:
        k = min(n // 48, 15)
        out += piece(48 * k)
        n -= 48 * k
    while n > 0:
        out += piece(min(n, 16))
        n -= min(n, 16)
    return out


REST = pop(0, 31)
BYTES = lambda n: pop(1, n - 1)          # the next n bytes, a byte per write
SQ = lambda n: pop(6, n - 1)             # the next n*n bytes as one piece
padv = lambda ms: pop(2, ADVANCES.index(ms))
repeat = lambda times: pop(7, REPEATS.index(times))  # the last piece again
C_BLOCK, C_UNBLOCK, C_RESET, C_EOF = pop(3, 0), pop(3, 1), pop(3, 10), pop(3, 11)
C_PIPELINED, C_REST, C_GARBAGE = pop(3, 12), pop(3, 13), pop(3, 14)
B_FIN, B_CLOSE, B_RST, B_READ = pop(4, 0), pop(4, 1), pop(4, 2), pop(4, 3)
PRUN = pop(5, 2)


def proxy_seed(kind, flags, payload, ops=b""):
    assert len(ops) < 256
    return bytes([kind, flags]) + payload + ops + bytes([len(ops)])


M = b"X-Backend-Marker: m\r\n"


def resp(status_line, *fields, body=b"", marker=True):
    return (status_line.encode() + b"\r\n" + (M if marker else b"")
            + b"".join(f.encode() + b"\r\n" for f in fields) + b"\r\n" + body)


OK5 = resp("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Type: text/plain", body=b"hello")
CHUNKED = resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked",
               body=b"3;ext=1\r\nabc\r\n2;a=\"b c\";d\r\nde\r\n0\r\nX-Trailer: t\r\nX-More: u\r\n\r\n")
HOP = resp("HTTP/1.1 200 OK", "Connection: keep-alive, X-Hop", "X-Hop: 1", "Keep-Alive: timeout=5",
           "Proxy-Connection: x", "TE: trailers", "Trailer: X-T", "Server: backend",
           "Date: yesterday", "Upgrade: h2c", "Content-Length: 2", body=b"ok")
SWITCH = resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
              "Sec-WebSocket-Accept: a")
GOOD = {
    "cl": (GET, STRICT, OK5),
    "chunked_ext_trailers": (GET, STRICT, CHUNKED),
    "close_delimited": (GET, CLOSE | STRICT, resp("HTTP/1.1 200 OK", body=b"until the close")),
    "close_delimited_fin": (GET, FIN | STRICT, resp("HTTP/1.0 200 OK", body=b"until the FIN")),
    "close_delimited_http10": (HTTP10, CLOSE | STRICT, resp("HTTP/1.1 200 OK", body=b"to 1.0")),
    "chunked_http10": (HTTP10, STRICT, CHUNKED),
    "head": (HEAD, STRICT, resp("HTTP/1.1 200 OK", "Content-Length: 1000", 'ETag: "e"')),
    "head_chunked": (HEAD, STRICT, resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked")),
    "204": (GET, STRICT, resp("HTTP/1.1 204 No Content")),
    "304": (GET, STRICT, resp("HTTP/1.1 304 Not Modified", 'ETag: "e"', "Content-Length: 9")),
    "100_then_200": (POST_CL, STRICT, resp("HTTP/1.1 100 Continue", marker=False)
                     + resp("HTTP/1.1 200 OK", "Content-Length: 2", body=b"ok")),
    "103_then_200": (GET, STRICT, resp("HTTP/1.1 103 Early Hints", "Link: </a>; rel=preload")
                     + resp("HTTP/1.1 200 OK", "Content-Length: 2", body=b"ok")),
    "hop_by_hop": (GET, STRICT, HOP),
    "404_own_body": (DELETE_CLOSE, STRICT, resp("HTTP/1.1 404 Not Found", "Content-Length: 3",
                                                "Content-Type: text/html", body=b"no\n")),
    "backend_502": (GET, STRICT, resp("HTTP/1.1 502 Bad Gateway", "Content-Length: 4", body=b"mine")),
    "connection_close": (GET, STRICT, resp("HTTP/1.1 200 OK", "Connection: close",
                                           "Content-Length: 2", body=b"ok")),
    "upgrade_101": (UPGRADE, STRICT, SWITCH + b"first bytes of the tunnel"),
}
BAD = {
    "cl_te": (GET, STRICT, resp("HTTP/1.1 200 OK", "Content-Length: 2", "Transfer-Encoding: chunked",
                                body=b"0\r\n\r\n")),
    "two_cl": (GET, STRICT, resp("HTTP/1.1 200 OK", "Content-Length: 2", "Content-Length: 3",
                                 body=b"abc")),
    "cl_list": (GET, STRICT, resp("HTTP/1.1 200 OK", "Content-Length: 2, 2", body=b"ab")),
    "cl_plus": (GET, STRICT, resp("HTTP/1.1 200 OK", "Content-Length: +2", body=b"ab")),
    "obs_fold": (GET, STRICT, resp("HTTP/1.1 200 OK", "X-Folded: a", " b", "Content-Length: 0")),
    "space_before_colon": (GET, STRICT, resp("HTTP/1.1 200 OK", "X-Space : a", "Content-Length: 0")),
    "bare_lf": (GET, STRICT, b"HTTP/1.1 200 OK\n" + M[:-2] + b"\nContent-Length: 0\n\n"),
    "bare_cr": (GET, STRICT, b"HTTP/1.1 200 OK\r\n" + M + b"X-A: a\rb\r\nContent-Length: 0\r\n\r\n"),
    "http2": (GET, STRICT, resp("HTTP/2.0 200 OK", "Content-Length: 0")),
    "http09": (GET, CLOSE | STRICT, b"<html>no status line</html>"),
    "status_2_digits": (GET, STRICT, resp("HTTP/1.1 20 OK", "Content-Length: 0")),
    "status_1000": (GET, STRICT, resp("HTTP/1.1 1000 OK", "Content-Length: 0")),
    "te_gzip": (GET, STRICT, resp("HTTP/1.1 200 OK", "Transfer-Encoding: gzip", body=b"xx")),
    "te_gzip_chunked": (GET, STRICT, resp("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked",
                                          body=b"0\r\n\r\n")),
    "te_chunked_gzip": (GET, STRICT, resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, gzip")),
    "te_http10": (GET, STRICT, resp("HTTP/1.0 200 OK", "Transfer-Encoding: chunked", body=b"0\r\n\r\n")),
    "101_unasked": (GET, STRICT, SWITCH),
    "control_byte": (GET, STRICT, resp("HTTP/1.1 200 OK", "X-Ctl: a\x01b", "Content-Length: 0")),
    "nul_byte": (GET, STRICT, resp("HTTP/1.1 200 OK", "X-Nul: a\x00b", "Content-Length: 0")),
    "bad_chunk_size": (GET, STRICT, resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked",
                                         body=b"3\r\nabc\r\nzz\r\n")),
    "chunk_size_overflow": (GET, STRICT, resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked",
                                              body=b"fffffffffffffffff\r\nx\r\n")),
    "leftover_after_body": (GET, STRICT, resp("HTTP/1.1 200 OK", "Content-Length: 2",
                                              body=b"okHTTP/1.1 200 OK\r\n\r\n")),
    "cut_body": (GET, CLOSE | STRICT, resp("HTTP/1.1 200 OK", "Content-Length: 10", body=b"abc")),
    "cut_chunked": (GET, RST | STRICT, resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked",
                                            body=b"5\r\nab")),
    "smtp": (GET, STRICT, b"220 smtp ready\r\n\r\n"),
    "empty_then_close": (GET, CLOSE | STRICT, b""),
}
SCRIPTS = {                              # how the backend's bytes are cut
    "whole": lambda p: b"",
    "pieces7": lambda p: piece(7) * 12 + PRUN,
    "bytewise": lambda p: BYTES(32) * 6,
    "head_apart": lambda p: take(p.find(b"\r\n\r\n") + 2) + PRUN + take(2) + PRUN + SQ(3) + PRUN,
}
for name, (kind, flags, payload) in list(GOOD.items()) + list(BAD.items()):
    for sname, ops in SCRIPTS.items():
        if sname != "head_apart" or b"\r\n\r\n" in payload:
            put("fuzz_proxy", "%s_%s" % (name, sname), proxy_seed(kind, flags, payload, ops(payload)))

LINE = b"X-Big: " + b"a" * 91 + b"\r\n"                  # 100 bytes: one SQ(10) piece
STATUS = b"HTTP/1.1 200 OK\r\n"
TE_HEAD = resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked")
BIG_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 100100\r\n\r\n"
PROXY = {
    # a huge head: one field line again and again, past 64 KiB
    "huge_head": proxy_seed(GET, STRICT, STATUS + LINE + b"\r\n",
                            take(len(STATUS)) + SQ(10) + repeat(700) + REST),
    # 200 fields (the limit is 100), and exactly 100
    "200_fields": proxy_seed(GET, STRICT, STATUS + b"X-F: v\r\n\r\n",
                             take(len(STATUS)) + piece(8) + repeat(200) + REST),
    "100_fields": proxy_seed(GET, STRICT, STATUS + b"X-F: v\r\nContent-Length: 0\r\n\r\n",
                             take(len(STATUS)) + piece(8) + repeat(98) + REST),
    "101_fields": proxy_seed(GET, STRICT, STATUS + b"X-F: v\r\nContent-Length: 0\r\n\r\n",
                             take(len(STATUS)) + piece(8) + repeat(99) + REST),
    # chunk extensions, or trailers, without end
    "chunk_ext_flood": proxy_seed(GET, STRICT, TE_HEAD + b"1;e=" + b"x" * 91 + b"\r\na\r\n",
                                  take(len(TE_HEAD)) + SQ(10) + repeat(1000) + REST),
    "trailer_flood": proxy_seed(GET, STRICT, TE_HEAD + b"0\r\n" + LINE + b"\r\n",
                                take(len(TE_HEAD) + 3) + SQ(10) + repeat(700) + REST),
    # a big body into a blocked client: eddy stops reading, then drains
    "big_body_blocked": proxy_seed(GET, BLOCKED | STRICT, BIG_HEAD + b"0123456789" * 10,
                                   take(len(BIG_HEAD)) + SQ(10) + repeat(1000) + PRUN + padv(500)
                                   + C_UNBLOCK + PRUN),
    "big_chunked_short_writes": proxy_seed(GET, STRICT | (3 << 5),
                                           TE_HEAD + b"5e\r\n" + b"y" * 94 + b"\r\n0\r\n\r\n",
                                           take(len(TE_HEAD)) + SQ(10) + repeat(500) + REST),
    "client_send_timeout": proxy_seed(GET, BLOCKED, BIG_HEAD + b"z" * 100,
                                      take(len(BIG_HEAD)) + SQ(10) + repeat(1000) + padv(1001)
                                      + PRUN),
    # timeouts: the first byte never comes; a body stops; a kept connection idles
    "first_byte_timeout": proxy_seed(GET, STRICT, b"", padv(299) + padv(1)),
    "read_timeout": proxy_seed(GET, 0, resp("HTTP/1.1 200 OK", "Content-Length: 10", body=b"abc"),
                               REST + padv(300) + PRUN),
    "read_timeout_chunked": proxy_seed(GET, 0, CHUNKED[:-12], REST + padv(301) + PRUN),
    "read_timeout_strict": proxy_seed(GET, STRICT, resp("HTTP/1.1 200 OK", "Content-Length: 10",
                                                        body=b"abc")),
    "read_timeout_chunked_strict": proxy_seed(GET, STRICT, CHUNKED[:-12]),
    "idle_then_reuse": proxy_seed(GET, STRICT, OK5 + OK5,
                                  take(len(OK5)) + PRUN + padv(400) + C_PIPELINED + REST),
    "idle_expires": proxy_seed(GET, STRICT, OK5 + OK5,
                               take(len(OK5)) + PRUN + padv(501) + C_PIPELINED + REST),
    "pipelined_keepalive": proxy_seed(GET, STRICT, OK5 + CHUNKED, take(len(OK5)) + PRUN
                                      + C_PIPELINED + PRUN + REST),
    "pipelined_at_once": proxy_seed(GET, STRICT, OK5 + OK5, C_PIPELINED + PRUN + REST),
    "pipelined_no_keepalive": proxy_seed(GET | NO_KEEPALIVE, STRICT, OK5 + OK5,
                                         take(len(OK5)) + C_PIPELINED + REST),
    "stale_kept_connection": proxy_seed(GET, STRICT, OK5 + OK5,
                                        take(len(OK5)) + PRUN + B_CLOSE + C_PIPELINED + PRUN + REST),
    "backend_fin_then_reuse": proxy_seed(GET, STRICT, OK5 + OK5,
                                         take(len(OK5)) + B_FIN + PRUN + C_PIPELINED + REST),
    # a 204 (or 304) has no body whatever its Content-Length says: the next
    # response on the kept connection follows it at once
    "204_length_then_next": proxy_seed(GET, STRICT, resp("HTTP/1.1 204 No Content",
                                                          "Content-Length: 5") + OK5,
                                       take(len(resp("HTTP/1.1 204 No Content",
                                                     "Content-Length: 5"))) + PRUN
                                       + C_PIPELINED + REST),
    # the client leaves, stops, or takes little at a time
    "client_reset_mid_body": proxy_seed(GET, 0, resp("HTTP/1.1 200 OK", "Content-Length: 20",
                                                     body=b"0123456789abcdefghij"),
                                        piece(48) + PRUN + C_RESET + REST),
    "client_reset_before_head": proxy_seed(GET, 0, OK5, C_RESET + REST),
    "client_eof": proxy_seed(GET, STRICT, OK5, C_EOF + PRUN + REST),
    "client_short_writes": proxy_seed(GET, STRICT | (1 << 5), CHUNKED),
    # bodies to the backend
    "post_cl_early_answer": proxy_seed(POST_CL, STRICT, OK5, REST + PRUN + C_REST),
    "post_cl_whole": proxy_seed(POST_CL, STRICT, OK5, C_REST + PRUN + B_READ + REST),
    "post_chunked": proxy_seed(POST_CHUNKED, STRICT, CHUNKED, C_REST + PRUN + REST),
    "post_chunked_backend_resets": proxy_seed(POST_CHUNKED, STRICT, b"", B_RST + C_REST + PRUN),
    "post_413_backend": proxy_seed(POST_CL, STRICT, resp("HTTP/1.1 413 Content Too Large",
                                                          "Content-Length: 0", "Connection: close"),
                                   REST + C_REST),
    "expect_100": proxy_seed(PUT_EXPECT, STRICT, OK5, PRUN + C_REST + PRUN + REST),
    "expect_backend_100": proxy_seed(PUT_EXPECT, STRICT, resp("HTTP/1.1 100 Continue", marker=False)
                                     + OK5, take(25) + C_REST + REST),
    # upgrades: bytes both ways, FIN, reset, a blocked client, an idle tunnel
    "upgrade_tunnel": proxy_seed(UPGRADE, STRICT, SWITCH + b"first" + b"second",
                                 take(len(SWITCH) + 5) + PRUN + C_REST + PRUN + REST + B_READ
                                 + padv(401)),
    "upgrade_bytewise_fin": proxy_seed(UPGRADE, FIN | STRICT, SWITCH + b"tunnel bytes\x00\xff",
                                       BYTES(32) * 6 + C_REST + C_EOF + PRUN),
    "upgrade_refused_200": proxy_seed(UPGRADE, STRICT, OK5, REST + C_PIPELINED),
    "upgrade_client_reset": proxy_seed(UPGRADE, 0, SWITCH, REST + PRUN + C_RESET + PRUN),
    "upgrade_blocked": proxy_seed(UPGRADE, BLOCKED | STRICT, SWITCH + b"t" * 100,
                                  take(len(SWITCH)) + SQ(10) + repeat(1000) + padv(399)
                                  + C_UNBLOCK + PRUN),
    "upgrade_h2c": proxy_seed(UPGRADE, STRICT, resp("HTTP/1.1 101 Switching Protocols",
                                                     "Upgrade: h2c", "Connection: upgrade")),
    "upgrade_after_103": proxy_seed(UPGRADE, STRICT, resp("HTTP/1.1 103 Early Hints") + SWITCH + b"x"),
    # what else the client may do
    "client_garbage": proxy_seed(GET, STRICT, OK5, REST + C_GARBAGE + PRUN),
    "http10_cl": proxy_seed(HTTP10, STRICT, OK5, REST),
    "delete_close": proxy_seed(DELETE_CLOSE, STRICT, CHUNKED, REST),
}
for name, data in PROXY.items():
    put("fuzz_proxy", name, data)
