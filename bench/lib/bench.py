#!/usr/bin/python3
"""Glue for bench/run.sh and bench/proxy.sh (Python 3 standard library
only); bench/lib/proxy.py, bench/proxy.sh's report, imports its report parts.

Subcommands:
  freeport                       print a free 127.0.0.1 TCP port
  wait-ready [--tls] PORT PID SECONDS
                                 wait until GET /index.html answers 200
  check [--tls] PORT ROOT        sanity-check a server's answers (--tls: over
                                 HTTPS, TLS 1.3, certificate not checked)
  measure ...                    run one load-generator command against a
                                 server, account the server's CPU time, and
                                 append one JSON result line (--backend-pid:
                                 also a backend's, for bench/proxy.sh)
  idle ...                       memory per idle keep-alive connection
  busy SECONDS                   CPU (% of one CPU) the machine spends meanwhile
  report ...                     print the table, write Markdown, JSON and SVG

Memory is read from the process that holds the connections: the server's own
process, or for nginx (--serving children) its worker; h2o's child is a perl
helper for crash backtraces, not a server.  CPU time is always the sum over
the process and all its descendants (every thread included, since
/proc/PID/stat of a process counts all its threads).
"""
import argparse
import asyncio
import datetime
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------- /proc ----
def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid):
    kids = _children_map()
    out, todo = [], list(kids.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pid):
    """(utime, stime) of one process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return int(fields[11]), int(fields[12])


def tree_cpu(pid):
    """(user, system) CPU seconds of a process and all its descendants."""
    u = k = 0
    for p in [pid] + descendants(pid):
        try:
            a, b = cpu_ticks(p)
            u, k = u + a, k + b
        except OSError:
            pass
    return u / CLK_TCK, k / CLK_TCK


def busy_seconds():
    """Machine-wide user+nice+system CPU time so far, all CPUs (/proc/stat)."""
    with open("/proc/stat") as f:
        fl = f.readline().split()
    return (int(fl[1]) + int(fl[2]) + int(fl[3])) / CLK_TCK


def self_cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def serving_pids(pid, how="self"):
    """The processes holding the connections: the server process itself, or
    (nginx) its children, the workers."""
    if how == "children":
        return _children_map().get(pid, []) or [pid]
    return [pid]


def rss_bytes(pids):
    total = 0
    for p in pids:
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ----------------------------------------------------------- tiny HTTP ----
class Reader:
    """Reads HTTP/1.1 responses (with Content-Length) off one socket,
    keeping bytes that belong to the next, pipelined, response."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _more(self, what):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("connection closed " + what)
        self.buf += chunk

    def response(self):
        """Return (status, headers dict lower-cased, body)."""
        while b"\r\n\r\n" not in self.buf:
            self._more("before the response head")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" not in headers:
            raise RuntimeError("response without Content-Length: %r" % lines[0])
        n = int(headers["content-length"])
        while len(self.buf) < n:
            self._more("in the body")
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def at_eof(self, timeout):
        """True when the peer closes with nothing more sent."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False


def read_response(sock):
    rd = Reader(sock)
    r = rd.response()
    if rd.buf:
        raise RuntimeError("unexpected bytes after the response")
    return r


_TLS_CTX = None


def connect(port, timeout, tls=False):
    """A connection to the server on 127.0.0.1:port; with tls, a TLS 1.3
    session over it (the bench's own self-signed certificate: not checked)."""
    global _TLS_CTX
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if not tls:
        return s
    if _TLS_CTX is None:
        _TLS_CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _TLS_CTX.check_hostname = False
        _TLS_CTX.verify_mode = ssl.CERT_NONE
        _TLS_CTX.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        return _TLS_CTX.wrap_socket(s)
    except Exception:
        s.close()
        raise


def req(path, port, extra=""):
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n").encode()


def h2_frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def h2_request(port):
    """The HTTP/2 preface, an empty SETTINGS and GET /index.html on stream 1:
    HPACK static entries :method GET (2), :scheme http (6), :path
    /index.html (5), and :authority as a literal (name index 1)."""
    auth = f"127.0.0.1:{port}".encode()
    block = bytes([0x82, 0x86, 0x85, 0x41, len(auth)]) + auth
    return (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0) +
            h2_frame(1, 0x5, 1, block))   # HEADERS, END_STREAM | END_HEADERS


async def h2_read_answer(r, w):
    """Reads frames until stream 1 ends (acknowledging the server's
    SETTINGS, as a client must); a reset or GOAWAY is an error."""
    while True:
        head = await r.readexactly(9)
        n, ftype, flags = int.from_bytes(head[:3], "big"), head[3], head[4]
        sid = int.from_bytes(head[5:9], "big") & 0x7fffffff
        await r.readexactly(n)
        if ftype == 4 and not flags & 1:
            w.write(h2_frame(4, 1, 0))
        elif ftype in (3, 7):
            raise RuntimeError("stream reset or GOAWAY")
        elif ftype in (0, 1) and sid == 1 and flags & 1:
            return


def cmd_freeport(a):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cmd_wait_ready(a):
    deadline = time.time() + a.seconds
    while time.time() < deadline:
        if not os.path.exists(f"/proc/{a.pid}"):
            print("process %d exited" % a.pid, file=sys.stderr)
            return 1
        try:
            with connect(a.port, 1, a.tls) as s:
                s.sendall(req("/index.html", a.port))
                st, _, _ = read_response(s)
                if st == 200:
                    return 0
        except (OSError, RuntimeError, ValueError, IndexError):
            pass
        time.sleep(0.1)
    print("no 200 for /index.html on port %d within %ss" % (a.port, a.seconds), file=sys.stderr)
    return 1


def cmd_check(a):
    """The answers the benchmark relies on: both files byte for byte, keep-alive
    kept for two requests, and Connection: close honoured (the server closes)."""
    index = open(os.path.join(a.root, "index.html"), "rb").read()
    big = open(os.path.join(a.root, "1m.bin"), "rb").read()
    problems = []
    try:
        with connect(a.port, 5, a.tls) as s:
            rd = Reader(s)
            for i in range(2):
                s.sendall(req("/index.html", a.port))
                st, h, body = rd.response()
                if st != 200 or body != index:
                    problems.append(f"/index.html #{i + 1}: status {st}, {len(body)} bytes")
                if h.get("content-encoding"):
                    problems.append("/index.html came compressed: " + h["content-encoding"])
            s.sendall(req("/1m.bin", a.port))
            st, h, body = rd.response()
            if st != 200 or hashlib.sha256(body).digest() != hashlib.sha256(big).digest():
                problems.append(f"/1m.bin: status {st}, {len(body)} bytes (content differs)")
        with connect(a.port, 5, a.tls) as s:
            rd = Reader(s)
            s.sendall(req("/index.html", a.port) * 16)
            for i in range(16):
                st, h, body = rd.response()
                if st != 200 or body != index:
                    problems.append(f"pipelined #{i + 1}: status {st}, {len(body)} bytes")
            if rd.buf:
                problems.append("pipelined: bytes after the 16th response")
        with connect(a.port, 5, a.tls) as s:
            rd = Reader(s)
            s.sendall(req("/index.html", a.port, "Connection: close\r\n"))
            st, h, body = rd.response()
            if st != 200 or body != index:
                problems.append(f"Connection: close: status {st}")
            if not rd.at_eof(3):
                problems.append("Connection: close: the server did not close the connection")
    except (OSError, RuntimeError, ValueError) as e:
        problems.append(f"{type(e).__name__}: {e}")
    for p in problems:
        print("check: " + p, file=sys.stderr)
    return 1 if problems else 0


# ------------------------------------------------------------- measure ----
WRK_RE = re.compile(r"^WRKJSON (\{.*\})\s*$", re.M)
TLSLOAD_RE = re.compile(r"^TLSLOADJSON (\{.*\})\s*$", re.M)
H2_REQ = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout")
H2_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
H2_FIN = re.compile(r"finished in ([\d.]+)(m?s)")


def parse_wrk(out):
    m = WRK_RE.search(out)
    if not m:
        raise RuntimeError("no WRKJSON line in wrk's output")
    j = json.loads(m.group(1))
    secs = j["duration_us"] / 1e6
    errs = {k: int(j[k]) for k in ("connect", "read", "write", "status", "timeout") if j[k]}
    return dict(requests=int(j["requests"]), ok=int(j["requests"]) - int(j["status"]),
                seconds=secs, bytes=int(j["bytes"]), errors=errs,
                p50_us=j["p50_us"], p99_us=j["p99_us"])


def parse_tlsload(out):
    """tlsload's line: as wrk's, plus what the handshakes agreed on.  A
    resumed session or a handshake on other parameters than the first makes
    the run invalid (the scenario is full handshakes on pinned parameters)."""
    m = TLSLOAD_RE.search(out)
    if not m:
        raise RuntimeError("no TLSLOADJSON line in tlsload's output")
    j = json.loads(m.group(1))
    errs = {k: int(v) for k, v in j["errors"].items() if v}
    if j["resumed"]:
        errs["resumed sessions"] = int(j["resumed"])
    if j["other_params"]:
        errs["handshakes on other TLS parameters"] = int(j["other_params"])
    hs = int(j["handshakes"])
    tls = dict(version=j["version"], suite=j["suite"], group=j["group"], handshakes=hs,
               connections=int(j["connections"]), resumed=int(j["resumed"]),
               tickets_per_handshake=(int(j["tickets"]) / hs) if hs else None)
    return dict(requests=int(j["requests"]), ok=int(j["ok"]), seconds=j["duration_us"] / 1e6,
                bytes=int(j["bytes"]), errors=errs, p50_us=j["p50_us"], p99_us=j["p99_us"],
                tls=tls)


def parse_h2load(out):
    m, st, fin = H2_REQ.search(out), H2_STATUS.search(out), H2_FIN.search(out)
    if not (m and st and fin):
        raise RuntimeError("unexpected h2load output")
    total, started, done, succ, failed, errored, tout = map(int, m.groups())
    s2, s3, s4, s5 = map(int, st.groups())
    secs = float(fin.group(1)) / (1000 if fin.group(2) == "ms" else 1)
    errs = {k: v for k, v in (("failed", failed), ("errored", errored), ("timeout", tout),
                              ("non-2xx", s3 + s4 + s5)) if v}
    tm = re.search(r"traffic: .*?\((\d+)\) total", out)
    return dict(requests=done, ok=succ, seconds=secs,
                bytes=int(tm.group(1)) if tm else 0, errors=errs)


def nginx_accepts(port):
    """Connections an nginx has accepted so far, from its stub_status page
    (served at / on 127.0.0.1:port)."""
    with connect(port, 5) as s:
        s.sendall(req("/", port, "Connection: close\r\n"))
        _, _, body = read_response(s)
    # "Active connections: N\nserver accepts handled requests\n A H R\n..."
    return int(body.decode().split("\n")[2].split()[0])


def cmd_measure(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    result = dict(server=a.server, scenario=a.scenario, cmd=" ".join(cmd))
    if a.note:
        result["note"] = a.note
    try:
        o0, s0 = busy_seconds(), self_cpu_seconds()
        u0, k0 = tree_cpu(a.pid)
        c0 = u0 + k0
        # a proxy's backend (bench/proxy.sh): its CPU is its own, not "other"
        b0 = sum(tree_cpu(a.backend_pid)) if a.backend_pid else 0.0
        n0 = nginx_accepts(a.backend_status) if a.backend_status else 0
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=a.timeout)
        wall = time.time() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        alive = os.path.exists(f"/proc/{a.pid}")
        u1, k1 = tree_cpu(a.pid) if alive else (u0, k0)
        c1 = u1 + k1
        b1 = sum(tree_cpu(a.backend_pid)) if a.backend_pid else 0.0
        n1 = nginx_accepts(a.backend_status) if a.backend_status else 0
        o1, s1 = busy_seconds(), self_cpu_seconds()
        if a.log:
            with open(a.log, "a") as f:
                f.write(f"### {a.server} {a.scenario}: {' '.join(cmd)}\n{p.stdout}\n")
        r = {"wrk": parse_wrk, "h2load": parse_h2load, "tlsload": parse_tlsload}[a.tool](p.stdout)
        if p.returncode != 0:
            r["errors"]["exit"] = p.returncode
        if a.min_bytes and r["requests"] and r["bytes"] / r["requests"] < a.min_bytes:
            # wrk counts every byte received, so whole responses can only
            # average more than the body: fewer means cut responses
            r["errors"]["short responses"] = round(r["bytes"] / r["requests"])
        if not alive:
            r["errors"]["server died"] = 1
        client_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        result.update(r)
        result["rps"] = r["ok"] / r["seconds"] if r["seconds"] else 0.0
        result["mbps"] = r["bytes"] / r["seconds"] / 1e6 if r["seconds"] else 0.0
        result["server_cpu_s"] = c1 - c0
        result["cpu_us_per_req"] = (c1 - c0) / r["requests"] * 1e6 if r["requests"] else None
        result["user_us_per_req"] = (u1 - u0) / r["requests"] * 1e6 if r["requests"] else None
        result["server_cpu_util"] = (c1 - c0) / wall
        result["client_cpu_util"] = client_cpu / wall
        result["client_cpu_us_per_req"] = client_cpu / r["requests"] * 1e6 if r["requests"] else None
        # the rest of the machine: all CPU time spent minus the server's, the
        # client's and ours (kernel work not charged to any process counts here)
        other = (o1 - o0) - (c1 - c0) - client_cpu - (s1 - s0) - (b1 - b0)
        result["other_cpu_util"] = max(0.0, other) / wall
        if a.backend_pid:
            result["backend_cpu_util"] = (b1 - b0) / wall
            result["backend_cpu_us_per_req"] = ((b1 - b0) / r["requests"] * 1e6
                                                if r["requests"] else None)
        if a.backend_status:
            # connections the backend accepted meanwhile (a proxy that
            # keeps its connections opens none once warmed up)
            result["backend_conns"] = n1 - n0
        result["valid"] = not r["errors"] and r["ok"] > 0
    except Exception as e:  # a broken run is reported, not fatal
        result.update(valid=False, errors={"exception": f"{type(e).__name__}: {e}"})
    with open(a.out, "a") as f:
        f.write(json.dumps(result) + "\n")
    e = result.get("errors") or {}
    print("    %-9s %-6s %s%s" % (a.server, a.scenario,
          "%.0f req/s, %.2f us CPU/req, CPU: server %.0f%%, client %.0f%%, %sother processes %.0f%%" % (
              result["rps"], result["cpu_us_per_req"] or 0, 100 * result["server_cpu_util"],
              100 * result["client_cpu_util"],
              "backend %.0f%%, " % (100 * result["backend_cpu_util"])
              if "backend_cpu_util" in result else "",
              100 * result["other_cpu_util"])
          if "rps" in result else "",
          ("  ERRORS " + json.dumps(e)) if e else ""))
    if a.disturbed and (result.get("other_cpu_util") or 0) > a.disturbed:
        return 3   # run.sh may try again
    return 0


# ---------------------------------------------------------------- idle ----
async def _idle(a):
    nofile = raise_nofile()
    n = a.n
    if nofile < n + 64:
        print(f"    idle: client descriptor limit {nofile} < {n}+64", file=sys.stderr)
    pids = serving_pids(a.pid, a.serving)
    before = rss_bytes(pids)
    conns, fails = [], {}
    sem = asyncio.Semaphore(a.parallel)
    request = h2_request(a.port) if a.h2 else req("/index.html", a.port)

    async def one():
        async with sem:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", a.port), 10)
            except Exception as e:
                fails[type(e).__name__] = fails.get(type(e).__name__, 0) + 1
                return
            try:
                w.write(request)
                if a.h2:
                    await asyncio.wait_for(h2_read_answer(r, w), 10)
                else:
                    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
                    status = int(head.split(b" ", 2)[1])
                    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                    await asyncio.wait_for(r.readexactly(int(m.group(1))), 10)
                    if status != 200:
                        raise RuntimeError("status %d" % status)
                conns.append((r, w))
            except Exception as e:
                fails[type(e).__name__] = fails.get(type(e).__name__, 0) + 1
                w.close()

    t0 = time.time()
    await asyncio.gather(*(one() for _ in range(n)))
    opened = time.time() - t0
    await asyncio.sleep(a.settle)
    alive = os.path.exists(f"/proc/{a.pid}")
    after = rss_bytes(pids) if alive else before
    closed_by_server = sum(1 for r, _ in conns if r.at_eof())
    for _, w in conns:
        w.close()
    await asyncio.sleep(0.2)
    held = len(conns) - closed_by_server
    errors = dict(fails)
    if closed_by_server:
        errors["closed while idle"] = closed_by_server
    if not alive:
        errors["server died"] = 1
    if held < n:
        errors["short"] = n - held
    return dict(server=a.server, scenario="h2-idle" if a.h2 else "idle", n=n, held=held, rss_before=before,
                rss_after=after, serving_pids=pids, open_seconds=opened,
                bytes_per_conn=(after - before) / held if held else None,
                errors=errors, valid=not errors)


def cmd_idle(a):
    try:
        result = asyncio.run(_idle(a))
    except Exception as e:
        result = dict(server=a.server, scenario="idle", valid=False,
                      errors={"exception": f"{type(e).__name__}: {e}"})
    with open(a.out, "a") as f:
        f.write(json.dumps(result) + "\n")
    if result.get("bytes_per_conn") is not None:
        print(("    %-9s " + result["scenario"] + "   %d connections held, RSS %.1f -> %.1f MiB, "
               "%.0f bytes/connection%s") % (
            a.server, result["held"], result["rss_before"] / 2**20, result["rss_after"] / 2**20,
            result["bytes_per_conn"],
            ("  ERRORS " + json.dumps(result["errors"])) if result["errors"] else ""))
    else:
        print("    %-9s %s   ERRORS %s" % (a.server, result["scenario"], json.dumps(result["errors"])))
    return 0


def cmd_busy(a):
    """Print the CPU (in % of one CPU) that processes outside our tree use."""
    b0, s0 = busy_seconds(), self_cpu_seconds()
    time.sleep(a.seconds)
    b1, s1 = busy_seconds(), self_cpu_seconds()
    print("%.0f" % max(0, 100 * ((b1 - b0) - (s1 - s0)) / a.seconds))


# -------------------------------------------------------------- report ----
SERVERS = ["eddy", "nginx", "h2o", "lighttpd"]
TLS_SCENARIOS = ("tls-hs", "tls-ka", "tls-1m", "h2tls-small", "h2tls-1m")
# (scenario, metric key, label, unit, higher is better, format)
ROWS = [
    ("ka", "rps", "(a) keep-alive, 64 conns", "req/s", True, "{:,.0f}"),
    ("ka", "cpu_us_per_req", "(a) keep-alive, 64 conns", "CPU µs/req", False, "{:.2f}"),
    ("ka", "user_us_per_req", "(a) keep-alive, 64 conns", "user-space CPU µs/req", False,
     "{:.2f}"),
    ("close", "rps", "(b) Connection: close, 64 conns", "req/s", True, "{:,.0f}"),
    ("close", "cpu_us_per_req", "(b) Connection: close, 64 conns", "CPU µs/req", False, "{:.2f}"),
    ("pipe", "rps", "(c) pipelined ×16, 64 conns", "req/s", True, "{:,.0f}"),
    ("pipe", "cpu_us_per_req", "(c) pipelined ×16, 64 conns", "CPU µs/req", False, "{:.2f}"),
    ("1m", "mbps", "(d) 1 MiB file, 16 conns", "MB/s", True, "{:,.0f}"),
    ("1m", "rps", "(d) 1 MiB file, 16 conns", "req/s", True, "{:,.0f}"),
    ("1m", "cpu_us_per_req", "(d) 1 MiB file, 16 conns", "CPU µs/req", False, "{:.1f}"),
    ("1m", "total_cpu_us_per_req", "(d) 1 MiB file, 16 conns", "server+client CPU µs/req", False,
     "{:.1f}"),
    ("idle", "bytes_per_conn", "(e) idle keep-alive conns", "bytes/conn", False, "{:,.0f}"),
    ("tls-hs", "rps", "(f) TLS new connections, 64 conns", "handshakes/s", True, "{:,.0f}"),
    ("tls-hs", "cpu_us_per_req", "(f) TLS new connections, 64 conns", "CPU µs/handshake", False,
     "{:.1f}"),
    ("tls-hs", "user_us_per_req", "(f) TLS new connections, 64 conns",
     "user-space CPU µs/handshake", False, "{:.1f}"),
    ("tls-ka", "rps", "(g) TLS keep-alive, 64 conns", "req/s", True, "{:,.0f}"),
    ("tls-ka", "cpu_us_per_req", "(g) TLS keep-alive, 64 conns", "CPU µs/req", False, "{:.2f}"),
    ("tls-ka", "user_us_per_req", "(g) TLS keep-alive, 64 conns", "user-space CPU µs/req", False,
     "{:.2f}"),
    ("tls-1m", "mbps", "(h) TLS 1 MiB file, 16 conns", "MB/s", True, "{:,.0f}"),
    ("tls-1m", "rps", "(h) TLS 1 MiB file, 16 conns", "req/s", True, "{:,.0f}"),
    ("tls-1m", "cpu_us_per_req", "(h) TLS 1 MiB file, 16 conns", "CPU µs/req", False, "{:.1f}"),
    ("tls-1m", "total_cpu_us_per_req", "(h) TLS 1 MiB file, 16 conns", "server+client CPU µs/req",
     False, "{:.1f}"),
    ("h2-small", "rps", "(i) h2c, 64 conns × 32 streams", "req/s", True, "{:,.0f}"),
    ("h2-small", "cpu_us_per_req", "(i) h2c, 64 conns × 32 streams", "CPU µs/req", False, "{:.2f}"),
    ("h2-1m", "mbps", "(j) h2c 1 MiB file, 64 conns × 32 streams", "MB/s", True, "{:,.0f}"),
    ("h2-1m", "cpu_us_per_req", "(j) h2c 1 MiB file, 64 conns × 32 streams", "CPU µs/req", False,
     "{:.1f}"),
    ("h2tls-small", "rps", "(k) h2 over TLS, 64 conns × 32 streams", "req/s", True, "{:,.0f}"),
    ("h2tls-small", "cpu_us_per_req", "(k) h2 over TLS, 64 conns × 32 streams", "CPU µs/req", False,
     "{:.2f}"),
    ("h2tls-1m", "mbps", "(l) h2 over TLS 1 MiB file, 64 conns × 32 streams", "MB/s", True,
     "{:,.0f}"),
    ("h2tls-1m", "cpu_us_per_req", "(l) h2 over TLS 1 MiB file, 64 conns × 32 streams",
     "CPU µs/req", False, "{:.1f}"),
    ("h2-idle", "bytes_per_conn", "(m) idle h2c conns", "bytes/conn", False, "{:,.0f}"),
]
SHORT = {"ka": "keep-alive", "close": "conn-close", "pipe": "pipelined", "1m": "1MiB",
         "idle": "idle", "tls-hs": "TLS handshake", "tls-ka": "TLS keep-alive",
         "tls-1m": "TLS 1MiB", "h2-small": "h2c", "h2-1m": "h2c 1MiB", "h2tls-small": "h2 TLS",
         "h2tls-1m": "h2 TLS 1MiB", "h2-idle": "idle h2c"}
# The TLS goals: eddy's server CPU per handshake, per keep-alive request and
# per 1 MiB response, each at most this multiple of the best peer's.
TLS_GOALS = [("tls-hs", "handshake CPU", 1.0), ("tls-ka", "keep-alive CPU per request", 0.9),
             ("tls-1m", "1 MiB CPU per response", 1.0)]
# The HTTP/2 goals (issue #13): server CPU per small response at most 0.8×
# h2o's; the 1 MiB file at least as fast (MB/s) as the best peer.
H2_GOALS = [("h2-small", "h2c small file CPU per request", "cpu_us_per_req", 0.8, "h2o"),
            ("h2tls-small", "h2 over TLS small file CPU per request", "cpu_us_per_req", 0.8, "h2o"),
            ("h2-1m", "h2c 1 MiB file rate", "mbps", 1.0, None),
            ("h2tls-1m", "h2 over TLS 1 MiB file rate", "mbps", 1.0, None)]


def status_key(server, scen):
    """Whose start status a scenario's cell reads: the TLS scenarios run on a
    second instance of each server, started HTTPS only, named SERVER-tls."""
    return server + "-tls" if scen in TLS_SCENARIOS else server


def _version(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=10)
        lines = [l.strip() for l in p.stdout.splitlines() if l.strip()]
        return lines[0] if lines else "?"
    except Exception as e:
        return f"? ({e})"


def _field(path, prefix, sep):
    """The value after `sep` on the first line of path starting with
    prefix, or None (the file missing or without such a line)."""
    try:
        for line in open(path):
            if line.startswith(prefix):
                return line.split(sep, 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info(a, versions):
    """The report's Machine table: the machine, then eddy's version (a.eddy,
    a.eddy_desc), then `versions` (program → its version line, in the
    order given), then Python's."""
    cpu = _field("/proc/cpuinfo", "model name", ":") or "?"
    mem = _field("/proc/meminfo", "MemTotal", ":")
    mem = "%.1f GiB" % (int(mem.split()[0]) / 2**20) if mem else "?"
    os_name = (_field("/etc/os-release", "PRETTY_NAME=", "=") or "?").strip('"')
    info = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu, "cpus": os.cpu_count(), "memory": mem,
        "kernel": platform.release(), "os": os_name,
        "eddy": _version([a.eddy, "--version"]) + f" ({a.eddy_desc})",
    }
    info.update(versions)
    info["python"] = platform.python_version()
    return info


def server_versions():
    """The programs bench/run.sh runs, for machine_info."""
    return {
        "nginx": _version(["nginx", "-v"]),
        "h2o": _version(["h2o", "--version"]),
        "lighttpd": _version(["lighttpd", "-v"]),
        "wrk": _version(["wrk", "-v"]),
        "h2load": _version(["h2load", "--version"]),
        "openssl": _version(["openssl", "version"]),
        "gnuplot": _version(["gnuplot", "--version"]) if shutil.which("gnuplot") else "missing",
    }


METRICS = {"rps": True, "mbps": True, "cpu_us_per_req": False, "user_us_per_req": False,
           "total_cpu_us_per_req": False, "bytes_per_conn": False}


def load_results(path, disturbed=0.2):
    """One record per (server, scenario).  Several attempts (rounds of
    REPEAT, or runs repeated because other processes disturbed them) merge
    into one: valid attempts only, undisturbed ones when there are any, and
    per metric the best of them (best-of-N: noise on a shared machine only
    ever makes a figure worse)."""
    raw = {}
    try:
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                if r.get("cpu_us_per_req") is not None and r.get("client_cpu_us_per_req") is not None:
                    r["total_cpu_us_per_req"] = r["cpu_us_per_req"] + r["client_cpu_us_per_req"]
                raw.setdefault((r["server"], r["scenario"]), []).append(r)
    except FileNotFoundError:
        pass
    res = {}
    for key, recs in raw.items():
        valid = [r for r in recs if r.get("valid")]
        if not valid:
            res[key] = dict(recs[-1], attempts=len(recs))
            continue
        quiet = [r for r in valid if (r.get("other_cpu_util") or 0) <= disturbed]
        pool = quiet or valid
        rep = max(pool, key=lambda r: r.get("rps") or -(r.get("bytes_per_conn") or 0))
        merged = dict(rep, attempts=len(recs), used=len(pool))
        for m, higher in METRICS.items():
            vals = [r[m] for r in pool if r.get(m) is not None]
            if vals:
                merged[m] = max(vals) if higher else min(vals)
        res[key] = merged
    return res


def fmt(v, f):
    return "–" if v is None else f.format(v)


def cell(r, key, f):
    """A table cell for record r's figure `key` (format f), and the figure
    when it counts (a valid run), else None: "not run", "died", "N (!)" (a
    run with errors) or "invalid"."""
    if r is None:
        return "not run", None
    v = r.get(key)
    if not r.get("valid"):
        if "server died" in (r.get("errors") or {}):
            return "died", None
        return (f"{fmt(v, f)} (!)" if v is not None else "invalid"), None
    return fmt(v, f), v


def best_peer(vals, higher, against=None):
    """(peer, its figure, eddy's ÷ it) for the best peer of eddy in vals
    (server → figure; only `against` when given), or None when eddy or
    every peer is missing."""
    peers = {s: v for s, v in vals.items() if s != "eddy" and (against is None or s == against)}
    if vals.get("eddy") is None or not peers:
        return None
    best = (max if higher else min)(peers, key=peers.get)
    return best, peers[best], vals["eddy"] / peers[best]


def ratio_cell(vals, higher):
    """The "eddy ÷ best peer" cell: "0.87× vs nginx (eddy better)", or "–"
    when eddy or every peer lacks a figure above zero."""
    b = best_peer({s: v for s, v in vals.items() if v is not None}, higher)
    if b is None or not (b[1] > 0 and vals["eddy"] > 0):
        return "–"
    best_s, _, rt = b
    better = rt >= 1 if higher else rt <= 1
    return "%.2f× vs %s (%s)" % (rt, best_s, "eddy better" if better and rt != 1
                                 else "equal" if rt == 1 else "eddy worse")


def valid_figures(res, scen, key, servers=None):
    """server → its figure `key` in scenario scen, for valid runs with one
    (of `servers` only, when given)."""
    return {s: r.get(key) for (s, sc), r in res.items()
            if sc == scen and (servers is None or s in servers) and r.get("valid") and r.get(key)}


def invalid_note(server, scen_short, r):
    return f"{server} {scen_short}: invalid — errors {json.dumps(r.get('errors'))}"


def build_table(res, status):
    """Rows of cells (strings), plus footnotes, plus chart data."""
    header = ["scenario", "metric", *SERVERS, "eddy ÷ best peer"]
    rows, notes, chart = [], [], []
    tls_run = any(k.endswith("-tls") for k in status)
    for scen, key, label, unit, higher, f in ROWS:
        if scen in TLS_SCENARIOS and not tls_run:
            continue
        cells, vals = [label, unit + (" ↑" if higher else " ↓")], {}
        for s in SERVERS:
            sk = status_key(s, scen)
            if status.get(sk) != "ok":
                cells.append(status.get(sk, "not run"))
                continue
            r = res.get((s, scen))
            died = res.get((sk, "_died"))
            if r is None and died:
                cells.append("not run (died)")
                continue
            text, v = cell(r, key, f)
            cells.append(text)
            if r is not None and r.get("valid"):
                vals[s] = v
            elif r is not None:
                note = invalid_note(s, SHORT[scen], r)
                if note not in notes:
                    notes.append(note)
        cells.append(ratio_cell(vals, higher))
        rows.append(cells)
        good = {s: v for s, v in vals.items() if v and v > 0}
        if good:
            best_all = max(good.values()) if higher else min(good.values())
            chart.append((f"{SHORT[scen]} {unit}",
                          {s: ((good[s] / best_all) if higher else (best_all / good[s]))
                           if s in good else None for s in SERVERS}))
    return header, rows, notes, chart


def tls_goal_lines(res):
    """One line per TLS goal: eddy's CPU figure against the best peer's."""
    out = []
    for scen, what, goal in TLS_GOALS:
        vals = valid_figures(res, scen, "cpu_us_per_req")
        b = best_peer(vals, False)
        if b is None:
            out.append(f"TLS {what}: not measured (goal ≤ {goal:.2f}× the best peer's)")
            continue
        best, peer, rt = b
        out.append(f"TLS {what}: eddy {vals['eddy']:.1f} µs, {rt:.2f}× {best}'s "
                   f"{peer:.1f} µs (goal ≤ {goal:.2f}×): "
                   + ("met" if rt <= goal else "NOT met"))
    return out


def h2_goal_lines(res):
    """One line per HTTP/2 goal: eddy's figure against h2o's or the best peer's."""
    out = []
    for scen, what, key, goal, against in H2_GOALS:
        vals = valid_figures(res, scen, key)
        higher = key == "mbps"
        b = best_peer(vals, higher, against)
        if b is None:
            out.append(f"{what}: not measured")
            continue
        best, peer, rt = b
        ok = rt >= goal if higher else rt <= goal
        out.append(f"{what}: eddy {vals['eddy']:,.2f}, {rt:.2f}× {best}'s {peer:,.2f} "
                   f"(goal {'≥' if higher else '≤'} {goal:.2f}×): " + ("met" if ok else "NOT met"))
    return out


def tls_param_lines(res):
    """What tlsload's full handshakes agreed on, per server."""
    out = []
    for s in SERVERS:
        t = (res.get((s, "tls-hs")) or {}).get("tls")
        if t and t.get("handshakes"):
            out.append(f"{s}: {t['version']} {t['suite']} {t['group']}, "
                       f"{t['tickets_per_handshake']:.2f} tickets per handshake, "
                       f"{t['resumed']} of {t['handshakes']} resumed")
    return out


def worker_rows(res):
    w1, w2 = res.get(("eddy-w1u", "ka")), res.get(("eddy-w2u", "ka"))
    if not w2:
        return []
    out = []
    for key, unit, f, higher in (("rps", "req/s", "{:,.0f}", True),
                                 ("cpu_us_per_req", "CPU µs/req", "{:.2f}", False)):
        a = w1.get(key) if w1 and w1.get("valid") else None
        b = w2.get(key) if w2.get("valid") else None
        ratio = "%.2f×" % (b / a) if a and b else "–"
        out.append(["(a) keep-alive, unpinned: eddy --workers 1 → --workers 2", unit,
                    fmt(a, f) if w1 else "not run", fmt(b, f) if w2.get("valid") else "invalid",
                    ratio])
    return out


def render_text(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [" | ".join(str(h).ljust(w) for h, w in zip(header, widths)), line]
    for r in rows:
        out.append(" | ".join(str(c).rjust(w) if i >= 2 else str(c).ljust(w)
                              for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def render_md(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)


def write_svg(chart, svg, workdir):
    if not shutil.which("gnuplot") or not chart:
        return False
    dat = os.path.join(workdir, "chart.dat")
    with open(dat, "w") as f:
        f.write("metric " + " ".join(SERVERS) + "\n")
        for label, vals in chart:
            f.write('"%s" ' % label + " ".join(
                "%.4f" % vals[s] if vals[s] is not None else "?" for s in SERVERS) + "\n")
    gp = os.path.join(workdir, "chart.gp")
    with open(gp, "w") as f:
        f.write(f"""set terminal svg size 1100,560 dynamic enhanced font 'sans,12' background rgb 'white'
set output '{svg}'
set datafile missing '?'
set title 'eddy vs nginx, h2o, lighttpd: each figure relative to the best of the four (1.0 = best; higher is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:1.15]
set ytics 0.2
set grid ytics
set key top right horizontal
set xtics rotate by -30 scale 0 font ',10'
set bmargin 8
set rmargin 6
set ylabel 'relative to best (inverted for CPU and memory)'
plot '{dat}' using 2:xtic(1) title columnheader(2) lc rgb '#d62728', \\
     '' using 3 title columnheader(3) lc rgb '#1f77b4', \\
     '' using 4 title columnheader(4) lc rgb '#2ca02c', \\
     '' using 5 title columnheader(5) lc rgb '#9467bd'
""")
    p = subprocess.run(["gnuplot", gp], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print("gnuplot failed:\n" + p.stdout, file=sys.stderr)
        return False
    return True


def died_notes(res, short):
    """"KEY DIED during SCENARIO" for each _died record (see record_death
    in common.sh), scenarios named by `short` where it has them."""
    return [f"{s} DIED during {short.get(r['during'], r['during'])}"
            for (s, scen), r in sorted(res.items()) if scen == "_died"]


def busy_before_hint(busy_before):
    """The hint when other processes were busy as the run began, or None."""
    if busy_before and float(busy_before) > 10:
        return (f"before the run, other processes on this machine were using "
                f"{busy_before}% of a CPU: every figure may be disturbed")
    return None


def disturbed_runs(res, short):
    """The runs during which other processes used more than 10% of a CPU,
    as (share, "server scenario") least disturbed first, and how many runs
    were measured at all."""
    busy = sorted(((r.get("other_cpu_util") or 0), f"{s} {short.get(sc, sc)}")
                  for (s, sc), r in res.items() if (r.get("other_cpu_util") or 0) > 0.1)
    return busy, sum(1 for r in res.values() if "other_cpu_util" in r)


def machine_md(info):
    """The report's "## Machine" section, as Markdown lines."""
    return ["## Machine", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info.items()]


def write_report(a, prefix, md, info, status, table, shown, svg=None):
    """Write OUTDIR/PREFIXlatest.{md,json} and a copy of each named by the
    date (and .svg, copies of svg when given: the Markdown's link to
    latest.svg follows the name); then print the machine, the versions of
    the programs named in `shown` (keys of info) and the files written."""
    raw = {"info": info, "status": status, "table": table,
           "runs": [json.loads(l) for l in open(a.results) if l.strip()]}
    os.makedirs(a.outdir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    files = []
    for name in (prefix + "latest", prefix + stamp):
        p = os.path.join(a.outdir, name + ".md")
        with open(p, "w") as f:
            f.write("\n".join(md).replace("](latest.svg)", f"]({name}.svg)") if svg
                    else "\n".join(md))
        files.append(p)
        p = os.path.join(a.outdir, name + ".json")
        with open(p, "w") as f:
            json.dump(raw, f, indent=1)
        files.append(p)
        if svg:
            p = os.path.join(a.outdir, name + ".svg")
            shutil.copyfile(svg, p)
            files.append(p)
    print()
    print("machine: %s, %s CPUs, %s, kernel %s, %s" % (info["cpu"], info["cpus"], info["memory"],
                                                      info["kernel"], info["os"]))
    for k in shown:
        print(f"  {k}: {info[k]}")
    print("wrote: " + ", ".join(files))
    return files


def add_report_args(p):
    """The arguments of every report (bench.py's and proxy.py's), as
    common.sh's `report` passes them."""
    p.add_argument("--results", required=True)
    p.add_argument("--status", required=True, help="JSON {server: 'ok' | reason}")
    p.add_argument("--outdir", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--eddy-desc", default="")
    p.add_argument("--eddy", required=True)
    p.add_argument("--duration", default="10")
    p.add_argument("--warmup", default="2")
    p.add_argument("--busy-before", default="")
    p.add_argument("--disturbed", type=float, default=0.2)
    p.add_argument("--repeat", type=int, default=1)


def cmd_report(a):
    res = load_results(a.results, a.disturbed)
    status = json.loads(a.status)
    info = machine_info(a, server_versions())
    header, rows, notes, chart = build_table(res, status)
    wrows = worker_rows(res)
    print()
    print(render_text(header, rows))
    if wrows:
        wh = ["scenario", "metric", "--workers 1", "--workers 2", "2 ÷ 1"]
        print()
        print(render_text(wh, wrows))
    notes[:0] = reversed(died_notes(res, SHORT))
    for n in notes:
        print("  note: " + n)
    # bottleneck hints: a client at ~100% CPU bounds the req/s it can show
    hints = []
    for (s, scen), r in sorted(res.items()):
        cu, su = r.get("client_cpu_util"), r.get("server_cpu_util")
        if cu is not None and cu > 0.9 and (su or 0) < 0.9:
            hints.append(f"{s} {SHORT.get(scen, scen)}: load generator at {cu:.0%} CPU, server at "
                         f"{su:.0%} — req/s here is bounded by the client, compare CPU µs/req")
    busy_runs, measured = disturbed_runs(res, SHORT)
    if busy_runs:
        hints.append(f"other processes on this machine used more than 10% of a CPU during "
                     f"{len(busy_runs)} of {measured} measured runs (up to "
                     f"~{busy_runs[-1][0]:.0%}, in {busy_runs[-1][1]}): those figures may be "
                     f"disturbed (per-run values in the JSON, other_cpu_util)")
    before = busy_before_hint(a.busy_before)
    if before:
        hints.insert(0, before)
    for h in hints:
        print("  hint: " + h)
    goals = tls_goal_lines(res) if a.tls else []
    h2goals = h2_goal_lines(res)
    params = tls_param_lines(res) if a.tls else []
    for g in goals + h2goals:
        print("  goal: " + g)
    if params:
        print("  (f) handshakes agreed on: " + "; ".join(params))

    tls_bullets = [f"- (f) `tlsload -c 64 -n 1 -d {a.duration}` (bench/lib/tlsload.c): every "
               f"connection is a new TCP connection and a full TLS 1.3 handshake (no session "
               f"offered for resumption: wrk and h2load resume, so they would measure "
               f"resumptions), one GET /index.html with `Connection: close`, then the server "
               f"closes; CPU µs per handshake is the server's CPU per connection, handshake, "
               f"request and close included. The client's own handshake work (OpenSSL 3.0; "
               f"more than the server's) bounds the rate, so compare CPU µs/handshake.",
               f"- (g) `wrk -t1 -c64 -d{a.duration}s` over https, GET /index.html: 64 handshakes, "
               f"then keep-alive.",
               f"- (h) `wrk -t1 -c16 -d{a.duration}s` over https, GET /1m.bin; a run whose "
               f"responses average under 1 MiB is invalid."]
    md = [f"# eddy benchmark — {info['date']}", "",
          "Generated by `bench/run.sh`. Every server runs one worker pinned to CPU 0 "
          "(`taskset -c 0`); the load generator runs on CPU 1. Access logs off, sendfile on, "
          "no compression, keep-alive unlimited (lighttpd: 65535, its maximum) with a 300 s "
          "timeout. CPU µs/req is the server's own utime+stime (all its processes and threads) "
          "over the measured run divided by the requests completed. Ratios: eddy ÷ best peer; "
          "↑ higher is better, ↓ lower is better. `(!)` marks a figure with errors (invalid). "
          + (f"Each figure is the best of {a.repeat} rounds run some minutes apart. " if a.repeat > 1
             else "")
          + f"A run during which other processes on the machine used more than "
            f"{a.disturbed:.0%} of a CPU is repeated while the time budget allows, and the "
            f"least disturbed attempts count.", "",
          render_md(header, rows), ""]
    if wrows:
        md += ["Workers (server and load generator unpinned):", "",
               render_md(["scenario", "metric", "--workers 1", "--workers 2", "2 ÷ 1"], wrows), ""]
    if goals:
        md += ["TLS goals (eddy's server CPU against the best peer's):", ""]
        md += [f"- {g}" for g in goals] + [""]
    if h2goals:
        md += ["HTTP/2 goals:", ""]
        md += [f"- {g}" for g in h2goals] + [""]
    if notes or hints:
        md += ["Notes:", ""] + [f"- {n}" for n in notes + hints] + [""]
    md += machine_md(info)
    md += ["", "## Scenarios", "",
           f"- (a) `wrk -t1 -c64 -d{a.duration}s` GET /index.html (190 bytes), after a "
           f"{a.warmup} s warm-up.",
           f"  The user-space row is the server's utime alone: its own code, without the "
           f"kernel's TCP and wake-up work, which on loopback depends on timing between server "
           f"and client (see Caveats).",
           f"- (b) the same with `-H 'Connection: close'` (wrk reconnects after each response).",
           f"- (c) `h2load --h1 -c64 -m16 -D {a.duration}` GET /index.html: HTTP/1.1 pipelining "
           f"16 deep.",
           f"- (d) `wrk -t1 -c16 -d{a.duration}s` GET /1m.bin (1 MiB of random bytes); MB/s = "
           f"10^6 bytes/s as received by wrk. wrk reads 8 KiB per read(), so one wrk thread can "
           f"be the limit here: then compare CPU µs/req. The server+client row adds the load "
           f"generator's own CPU time per request: on loopback the kernel's TCP receive work is "
           f"charged to whichever process delivers the packets, so the server's share alone can "
           f"shift between server and client.",
           f"- (e) {a.idle} keep-alive connections each send one request, read the answer and "
           f"idle; (VmRSS after − VmRSS before) ÷ connections, of the serving process "
           f"(nginx: its worker). nginx allocates and touches its connection and event "
           f"structures for all `worker_connections` at start, so they are in its 'before' "
           f"figure and not in the delta.",
           f"- (i) `h2load -t1 -c64 -m32 -D {a.duration}` GET /index.html over h2c (HTTP/2 with "
           f"prior knowledge on a plain port; nginx on a second port of its own, `listen ... "
           f"http2`, since its h2c port speaks nothing else); (j) the same for /1m.bin.",
           f"- (k), (l) as (i), (j) over https (ALPN h2), on the TLS instance of each server.",
           f"- (m) as (e) over h2c: each connection sends the preface, SETTINGS and one GET "
           f"/index.html on stream 1, reads the answer and idles."]
    if a.tls:
        md += tls_bullets
    md += ["", "Per-server settings beyond the defaults: nginx `worker_processes 1`, "
           "`keepalive_requests 1000000000`, `keepalive_timeout 300s`, `access_log off`, "
           "`sendfile on`, `open_file_cache max=1000 inactive=60s` with `open_file_cache_valid 1s`, "
           "`open_file_cache_min_uses 1` and `open_file_cache_errors on` (eddy keeps hot files "
           "open and looks their paths up again after 1 s), "
           "`worker_connections`/`worker_rlimit_nofile` raised for (e); "
           "h2o `num-threads: 1`, `http1-request-timeout: 300`, `max-connections` raised, "
           "no access-log; lighttpd `server.max-keep-alive-requests = 65535` (0 would disable "
           "keep-alive), `server.max-keep-alive-idle = 300`, `server.max-fds`/"
           "`server.max-connections` raised, no mod_accesslog; eddy `--keepalive-timeout 300`. "
           "Servers start under `prlimit --nofile` at the highest limit the machine allows.", ""]
    if a.tls:
        md += ["TLS settings: a second instance of each server, HTTPS only, one ECDSA P-256 "
               "certificate (self-signed, made by the script), TLS 1.3 only, "
               "TLS_AES_128_GCM_SHA256, X25519, session tickets with one ticket per handshake, no "
               "server-side session cache, no kernel TLS (this kernel has no `tls` module, so "
               "no server can sendfile under TLS). The clients offer only that suite and group "
               "(tlsload by its flags, wrk through an OpenSSL config file in OPENSSL_CONF), and "
               "each server is set to them as far as it has directives: nginx `ssl_protocols "
               "TLSv1.3`, `ssl_ecdh_curve X25519`, `ssl_conf_command Ciphersuites` and "
               "`NumTickets 1`; lighttpd `ssl.openssl.ssl-conf-cmd` (MinProtocol, Ciphersuites, "
               "Groups, NumTickets 1) and `ssl.read-ahead = \"enable\"`; h2o `minimum-version: "
               "TLSv1.3`, `cipher-preference: server`, `neverbleed: OFF` (no private-key "
               "process), `ocsp-update-interval: 0`, `ssl-session-resumption: mode: ticket`, "
               "and the rest from the same OpenSSL config file (h2o 2.2 has no directive for "
               "TLS 1.3 suites, groups or tickets); eddy `--tls-min 1.3` (its fixed order puts "
               "AES-128-GCM and X25519 first; one ticket). Everything else as in the plain "
               "configurations above. What the handshakes agreed on:", ""]
        md += [f"  - {x}" for x in params] + [""]
    md += ["## Caveats", "",
           "- Loopback on a 2-CPU VM: a response delivered while the client sleeps costs the "
           "sender a cross-CPU wake-up, charged as kernel time to whichever side sends. A server "
           "that saturates its CPU keeps the client waiting and pays more of these per request "
           "than one the client cannot keep up with, so kernel CPU per request is partly a "
           "property of the pairing, not of the server alone (eddy's keep-alive figure has been "
           "seen anywhere from ~10.3 to ~14.6 µs/req on the same binary across runs here). The "
           "user-space row is much less affected.",
           "- One wrk thread on one CPU is often the limit (see the hints): then req/s compares "
           "the client, and CPU µs/req is the figure to compare.",
           "- Figures move by 10–30% between runs on a shared VM; run twice, or use REPEAT=2 "
           "DURATION=5 (same time, best of two rounds), before reading much into a gap below "
           "that.", ""]
    svg_tmp = os.path.join(a.workdir, "chart.svg")
    have_svg = write_svg(chart, svg_tmp, a.workdir)
    if have_svg:
        md += ["![relative performance](latest.svg)", ""]
    write_report(a, "", md, info, status, list(res.values()),
                 ("eddy", "nginx", "h2o", "lighttpd", "wrk", "h2load"),
                 svg_tmp if have_svg else None)
    return 0


def main():
    # Ctrl-C: die of the signal, so that bench/run.sh sees it and stops too.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("freeport").set_defaults(fn=cmd_freeport)
    p = sub.add_parser("wait-ready")
    p.add_argument("--tls", action="store_true")
    p.add_argument("port", type=int)
    p.add_argument("pid", type=int)
    p.add_argument("seconds", type=float)
    p.set_defaults(fn=cmd_wait_ready)
    p = sub.add_parser("check")
    p.add_argument("--tls", action="store_true")
    p.add_argument("port", type=int)
    p.add_argument("root")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("measure")
    p.add_argument("--out", required=True)
    p.add_argument("--log")
    p.add_argument("--server", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--tool", choices=["wrk", "h2load", "tlsload"], required=True)
    p.add_argument("--min-bytes", type=int, default=0,
                   help="invalid when responses average fewer bytes than this")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--note")
    p.add_argument("--disturbed", type=float, default=0,
                   help="exit 3 when other processes used more than this share of a CPU")
    p.add_argument("--backend-pid", type=int,
                   help="a proxy's backend: its CPU time is recorded apart, not as other processes'")
    p.add_argument("--backend-status", type=int,
                   help="port of the backend nginx's stub_status: count the connections it accepts")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_measure)
    p = sub.add_parser("idle")
    p.add_argument("--out", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--parallel", type=int, default=128)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--serving", choices=["self", "children"], default="self",
                   help="whose memory: the server process, or its children (nginx's worker)")
    p.add_argument("--h2", action="store_true", help="HTTP/2 with prior knowledge")
    p.set_defaults(fn=cmd_idle)
    p = sub.add_parser("busy")
    p.add_argument("seconds", type=float)
    p.set_defaults(fn=cmd_busy)
    p = sub.add_parser("report")
    add_report_args(p)
    p.add_argument("--idle", default="10000")
    p.add_argument("--tls", type=int, default=0, help="1: the TLS scenarios were run")
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    sys.exit(a.fn(a) or 0)


if __name__ == "__main__":
    main()
