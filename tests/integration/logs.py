#!/usr/bin/env python3
"""Integration tests for eddy's logs: SIGUSR1 reopens the access and error
logs after logrotate renamed them (four workers, a few hundred requests
across the rotation, none lost or written twice); --access-log-format json
(every line parses, every field right, over HTTP/1.0, 1.1, HTTP/2 and
TLS); --log-level filters the error log, also when a reload changes it;
--error-log gets eddy's lines, and startup failures reach stderr too.

    python3 tests/integration/logs.py --eddy build/eddy
    python3 tests/integration/logs.py --eddy build/eddy -k rotation

Same harness, command line, output and exit status as run.py.  Python's
standard library only, and openssl to make a certificate.
"""

import contextlib
import datetime
import json
import re
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
from run import (Failure, check, check_eq, short, raw_request, get,  # noqa: E402
                 read_stdout_lines, spawn_server, run_eddy_to_exit)

LISTEN_RE = re.compile(r"^eddy listening on (https?)://(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)/$")
# An error-log line: time, level, then the message after "eddy: ".
ERRLOG_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[(error|warn|info|debug)\] eddy: (.*)$")
scratch = run.Scratch("eddy-logs-")
cleanup = scratch.cleanup


def fresh(name):
    """A path under the scratch directory, nothing there yet."""
    p = scratch() / name
    if p.exists():
        p.unlink()
    return p


@contextlib.contextmanager
def serve(*flags, listeners=1):
    """eddy with flags (and --root www), once its `listeners` ready lines
    came; yields (server, [(scheme, (host, port))])."""
    argv = [run.EDDY, *flags, *run.EDDY_ARGS]
    if "-c" not in flags:
        argv += ["--root", str(run.WWW)]
    with spawn_server(argv, 0) as srv:
        addrs = []

        def take(line):
            m = LISTEN_RE.match(line)
            if m:
                addrs.append((m.group(1), (m.group(2).strip("[]"), int(m.group(3)))))
            return len(addrs) == listeners

        read_stdout_lines(srv.proc, srv.errfile, take)
        yield srv, addrs


def stop(srv):
    """SIGTERM, and the exit: the access log's last lines are written then."""
    srv.signal(signal.SIGTERM)
    check_eq(srv.wait(10), 0, f"exit status (stderr {short(srv.stderr_text(), 300)})")


def lines_of(path):
    return path.read_bytes().decode("utf-8").splitlines() if path.exists() else []


def errlog_messages(path, level=None):
    """The messages of the error log's lines (of one level if given); fails
    on a line that is not in the error log's form."""
    out = []
    for line in lines_of(path):
        m = ERRLOG_RE.match(line)
        check(m, f"{path.name}: not an error-log line: {short(line)}")
        if level is None or m.group(1) == level:
            out.append(m.group(2))
    return out


def wait_for(what, cond, timeout=5):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise Failure(f"no {what} within {timeout} s")
        time.sleep(0.02)


def reopened_by_all(path, workers, times=1):
    return lambda: sum("access log reopened" in m for m in errlog_messages(path)) >= workers * times


# ------------------------------------------------------------- rotation --


def test_sigusr1_rotation_loses_nothing():
    """logrotate's way: rename both logs, SIGUSR1, while four workers
    serve 8 clients' requests.  Every request is in exactly one of the two
    access logs; those answered before the rename in the old one, those
    sent after every worker reopened in the new one."""
    access, errors = fresh("access.log"), fresh("error.log")
    with serve("--workers", "4", "--access-log", str(access), "--error-log", str(errors),
               "--log-level", "debug") as (srv, addrs):
        addr = addrs[0][1]
        sent, lock = [], threading.Lock()
        failures = []

        def client(k, count, start, pause):
            # Keep-alive connections, renewed now and then, so requests
            # reach every worker through many connections.
            try:
                conn = None
                for i in range(count):
                    if conn is None or i % 10 == 0:
                        if conn:
                            conn.close()
                        conn = run.RawConn(addr)
                    path = f"/?c={k}&n={start + i}"
                    conn.send(get(path))
                    r = conn.read_response()
                    if r.status != 200:
                        failures.append(f"{path}: {r.status}")
                    with lock:
                        sent.append(path)
                    time.sleep(pause)
                conn.close()
            except Exception as e:  # noqa: BLE001  (reported below)
                failures.append(f"client {k}: {e}")

        def wave(start, count, pause=0):
            threads = [threading.Thread(target=client, args=(k, count, start, pause))
                       for k in range(8)]
            for t in threads:
                t.start()
            return threads

        before = wave(0, 25)
        for t in before:
            t.join()
        answered_before = set(sent)
        during = wave(1000, 25, 0.01)     # spread across the rotation
        time.sleep(0.1)
        access.rename(access.with_suffix(".log.1"))
        errors.rename(errors.with_suffix(".log.1"))
        srv.proc.send_signal(signal.SIGUSR1)
        for t in during:
            t.join()
        wait_for("'access log reopened' from 4 workers", reopened_by_all(errors, 4))
        mark = len(sent)
        after = wave(2000, 10)
        for t in after:
            t.join()
        sent_after = set(sent[mark:])
        check(not failures, f"client failures: {failures[:5]}")
        stop(srv)
    old, new = lines_of(access.with_suffix(".log.1")), lines_of(access)
    paths_old = [re.search(r'"GET (\S+) HTTP/1.1"', line).group(1) for line in old]
    paths_new = [re.search(r'"GET (\S+) HTTP/1.1"', line).group(1) for line in new]
    check_eq(len(sent), 8 * 60, "requests sent")
    check_eq(sorted(paths_old + paths_new), sorted(sent), "every request logged exactly once")
    check(answered_before <= set(paths_old), "those answered before the rename: in the old file")
    check(sent_after <= set(paths_new), "those sent after every worker reopened: in the new file")
    # The error log too: its reopening is written to the new file.
    check("SIGUSR1: reopening the logs" in errlog_messages(errors, "info"),
          f"the new error log: {short(errors.read_text(), 300)}")
    check("SIGTERM, finishing requests in flight" in errlog_messages(errors, "info"),
          "later lines in the new error log")
    check(not any("SIGUSR1" in m for m in errlog_messages(errors.with_suffix(".log.1"))),
          "nothing of the rotation in the old error log")
    return f"{len(paths_old)} lines in the renamed file, {len(paths_new)} in the new"


def test_sigusr1_without_files_changes_nothing():
    """Logging to standard output and stderr: SIGUSR1 reopens nothing and
    eddy serves on (its default action would have killed it)."""
    with serve("--access-log", "-") as (srv, addrs):
        srv.proc.send_signal(signal.SIGUSR1)
        wait_for("the SIGUSR1 line", lambda: "SIGUSR1: reopening the logs" in srv.stderr_text())
        check_eq(raw_request(addrs[0][1], get("/")).status, 200, "GET / after SIGUSR1")
        srv.check_alive()


# ----------------------------------------------------------------- JSON --


def self_signed(name):
    d = scratch()
    cert, key = d / f"{name}.crt", d / f"{name}.key"
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                        "-days", "2", "-subj", f"/CN={name}", "-addext",
                        f"subjectAltName=DNS:{name}"], capture_output=True, timeout=30)
    check_eq(p.returncode, 0, f"openssl: {short(p.stderr, 200)}")
    return cert, key


def h2_get(addr, authority, path):
    """GET over HTTP/2 with prior knowledge, frames written here: the
    preface, an empty SETTINGS, one HEADERS (HPACK literals, no Huffman);
    reads until the stream's end.  Returns nothing: the log tells."""
    def literal(index, value):     # without indexing, name from the static table
        head = bytes([index]) if index < 15 else bytes([15, index - 15])
        return head + bytes([len(value)]) + value
    block = (b"\x82\x86" + literal(4, path.encode()) + literal(1, authority.encode())
             + literal(58, b"h2-test"))
    frames = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
              + len(block).to_bytes(3, "big") + b"\x01\x05\x00\x00\x00\x01" + block)
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(frames)
        buf = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            # A frame of stream 1 with END_STREAM ends the exchange.
            at = 0
            while at + 9 <= len(buf):
                n = int.from_bytes(buf[at:at + 3], "big")
                if buf[at + 4] & 1 and int.from_bytes(buf[at + 5:at + 9], "big") == 1 \
                        and buf[at + 3] in (0, 1):
                    return
                at += 9 + n
    raise Failure("no end of the HTTP/2 response")


def test_json_lines_carry_the_right_values():
    log = fresh("access.json")
    cert, key = self_signed("logs.test")
    with serve("--access-log", str(log), "--access-log-format", "json", "--workers", "2",
               "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0", "--cert", str(cert),
               "--key", str(key), "--delay", "/sleep=0.3", listeners=2) as (srv, addrs):
        plain = next(a for s, a in addrs if s == "http")
        tls = next(a for s, a in addrs if s == "https")
        t0 = datetime.datetime.now(datetime.timezone.utc)
        ua = b'tool "1"\t\\ caf\xc3\xa9 \xff'
        r = raw_request(plain, b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n"
                        b"Referer: http://r/\r\nUser-Agent: " + ua + b"\r\n\r\n")
        check_eq(r.status, 200, "GET /index.html")
        size = len(r.body)
        check_eq(raw_request(plain, b"HEAD /missing HTTP/1.0\r\n\r\n", head_request=True).status,
                 404, "HEAD /missing")
        check_eq(raw_request(plain, get("/sleep", "slow.test")).status, 200, "GET /sleep")
        check_eq(raw_request(plain, b"GARBAGE\r\n\r\n").status, 400, "a bad request")
        h2_get(plain, "h2.test", "/")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(tls, timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="logs.test") as s:
                tls_version = s.version()
                s.sendall(get("/", "logs.test", "Connection: close\r\n"))
                while s.recv(65536):
                    pass
        stop(srv)
    lines = lines_of(log)
    check_eq(len(lines), 6, f"lines ({short(chr(10).join(lines), 400)})")
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError as e:
            raise Failure(f"not JSON ({e}): {short(line, 300)}")
    keys = ["time", "client", "method", "path", "status", "bytes", "duration_us", "protocol",
            "tls", "host", "referer", "user_agent"]
    for e in entries:
        check_eq(list(e), keys, "the keys, in order")
        when = datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]),
              f"time {e['time']!r}: RFC 3339, milliseconds, UTC")
        check(abs((when - t0).total_seconds()) < 30, f"time {e['time']} is now")
        check_eq(e["client"], "127.0.0.1", "client")
    by_path = {e["path"]: e for e in entries if e["path"]}
    first = by_path["/index.html?q=1"]
    check_eq({k: first[k] for k in ("method", "status", "bytes", "protocol", "tls", "host",
                                    "referer", "user_agent")},
             {"method": "GET", "status": 200, "bytes": size, "protocol": "HTTP/1.1", "tls": None,
              "host": "example.com", "referer": "http://r/",
              "user_agent": 'tool "1"\t\\ café \ufffd'}, "GET /index.html")
    check(0 <= first["duration_us"] < 1_000_000, f"duration_us {first['duration_us']}")
    head = by_path["/missing"]
    check_eq((head["method"], head["status"], head["bytes"], head["protocol"], head["host"],
              head["user_agent"]), ("HEAD", 404, 0, "HTTP/1.0", None, None), "HEAD /missing")
    slow = by_path["/sleep"]
    check(300_000 <= slow["duration_us"] < 3_000_000,
          f"/sleep's duration_us {slow['duration_us']}, want about 300000")
    bad = [e for e in entries if e["status"] == 400]
    check_eq(len(bad), 1, "the bad request's line")
    h2 = [e for e in entries if e["host"] == "h2.test"]
    check_eq(len(h2), 1, "the HTTP/2 request's line")
    check_eq((h2[0]["protocol"], h2[0]["path"], h2[0]["status"], h2[0]["user_agent"], h2[0]["tls"]),
             ("HTTP/2", "/", 200, "h2-test", None), "over HTTP/2")
    over_tls = [e for e in entries if e["host"] == "logs.test"]
    check_eq(len(over_tls), 1, "the TLS request's line")
    check_eq((over_tls[0]["tls"], over_tls[0]["protocol"], over_tls[0]["status"]),
             (tls_version, "HTTP/1.1", 200), "over TLS")
    return f"6 lines; TLS said {tls_version}"


def test_json_from_the_configuration_file():
    """access-log-format is a key of the file like the flag."""
    log = fresh("access-conf.json")
    conf = scratch() / "json.yaml"
    conf.write_text(f"listen: 127.0.0.1:0\nroot: {run.WWW}\naccess-log: {log}\n"
                    f"access-log-format: json\n")
    with serve("-c", str(conf)) as (srv, addrs):
        check_eq(raw_request(addrs[0][1], get("/")).status, 200, "GET /")
        stop(srv)
    check_eq(json.loads(lines_of(log)[0])["path"], "/", "a JSON line")


def test_bad_log_flags_are_refused():
    for args, says in ((["--access-log-format", "xml"], "combined or json"),
                       (["--log-level", "loud"], "error|warn|info|debug"),
                       (["--error-log", "/nonexistent-dir/error.log"], "cannot open error log")):
        p = run_eddy_to_exit(*args)
        err = p.stderr.decode(errors="replace")
        check_eq(p.returncode, 2, f"{args}: exit status")
        check(err.count("\n") == 1 and err.startswith("eddy: ") and says in err,
              f"{args}: want one 'eddy: ' line saying {says!r}, got {short(err, 200)}")


# ------------------------------------------------------------ error log --


def test_log_level_filters_and_reloads():
    """warn keeps warnings and errors only; a reload that sets debug lets
    info and debug lines through from then on."""
    errors = fresh("levels.log")
    conf = scratch() / "levels.yaml"
    text = (f"listen: 127.0.0.1:0\nroot: {run.WWW}\nworkers: 2\nmax-body: 100\n"
            f"error-log: {errors}\nlog-level: warn\n")
    conf.write_text(text)
    with serve("-c", str(conf)) as (srv, addrs):
        srv.proc.send_signal(signal.SIGUSR1)          # info and debug: dropped
        time.sleep(0.2)
        conf.write_text(text.replace("max-body: 100", "max-body: 200"))
        srv.proc.send_signal(signal.SIGHUP)           # a warning, and info dropped
        wait_for("the warning", lambda: errlog_messages(errors, "warn"))
        check_eq(errlog_messages(errors),
                 ["SIGHUP: max-body changed; it takes effect at the next start"],
                 "at warn, the warning alone")
        conf.write_text(text.replace("log-level: warn", "log-level: debug"))
        srv.proc.send_signal(signal.SIGHUP)
        wait_for("the reload's info line",
                 lambda: "SIGHUP: configuration reloaded" in errlog_messages(errors, "info"))
        srv.proc.send_signal(signal.SIGUSR1)
        wait_for("debug lines", lambda: len(errlog_messages(errors, "debug")) == 2)
        check_eq(srv.stderr_text(), "", "stderr, with an error log file")
        stop(srv)


def test_error_log_gets_the_lines_and_stderr_the_failures():
    errors = fresh("lines.log")
    with serve("--error-log", str(errors)) as (srv, addrs):
        stop(srv)
        check_eq(srv.stderr_text(), "", "stderr")
    check_eq(errlog_messages(errors), ["SIGTERM, finishing requests in flight"], "the error log")
    # Without --error-log the same line goes to stderr, in the same form.
    with serve() as (srv, addrs):
        stop(srv)
        err = srv.stderr_text().splitlines()
    check(len(err) == 1 and ERRLOG_RE.match(err[0]) and err[0].endswith(
        "[info] eddy: SIGTERM, finishing requests in flight"), f"stderr {err!r}")
    # Why eddy did not start: on stderr as ever, and in the file too.
    failed = fresh("failed.log")
    p = run_eddy_to_exit("--error-log", str(failed), "--root", "/nonexistent/eddy-www")
    err = p.stderr.decode(errors="replace")
    check_eq(p.returncode, 2, "exit status")
    check(err.count("\n") == 1 and err.startswith("eddy: ") and "/nonexistent/eddy-www" in err,
          f"stderr {short(err, 200)}")
    msgs = errlog_messages(failed, "error")
    check(len(msgs) == 1 and msgs[0] == err[len("eddy: "):].rstrip("\n"),
          f"the file has the same message: {msgs!r}")


if __name__ == "__main__":
    sys.exit(run.main(tests=[(n[5:], f) for n, f in list(globals().items())
                             if n.startswith("test_") and callable(f)],
                      doc=__doc__, need_example=False, cleanup=cleanup,
                      timeouts={"sigusr1_rotation_loses_nothing": 40}))
