#!/usr/bin/env python3
"""Integration tests for --status: the counters match a known load (per
status class, HTTP/1.1 and h2, every worker and their sum), promtool
accepts the Prometheus text, --status-allow refuses other clients, bad
flags stop eddy, and the dashboard draws its charts in headless Chromium
while load runs (a screenshot lands in build/dashboard.png).

    python3 tests/integration/metrics.py --eddy build/eddy

Same harness, command line, output and exit status as run.py.  Tools:
curl, promtool (Debian's prometheus) and chromium (scripts/deps.sh test
installs them); without one, its test says SKIP when not root, and fails
as root, where make test would have installed it.
"""

import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (run.EDDY is set by run.main)
import tls as tlstest  # noqa: E402
from run import Failure, Skip, check, check_eq, short, need_curl, spawn_server  # noqa: E402

REPO = run.REPO
TMP = Path(tempfile.mkdtemp(prefix="eddy-metrics-"))
CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"]


def cleanup():
    shutil.rmtree(TMP, ignore_errors=True)
    tlstest.remove_certs()


def tool(name, package):
    """The tool's path; SKIP without it, unless root (make test installs it)."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK)
                                  else None)
    if path:
        return path
    if os.geteuid() == 0:
        raise Failure(f"{name} is not installed (make test installs Debian's {package})")
    raise Skip(f"{name} is not installed (apt-get install {package})")


def config_file(extra=""):
    """A site answering each status class: files at /, a redirect (3xx), a
    418 (4xx) and a 503 (5xx); the status page from the file's keys."""
    p = TMP / "metrics.yaml"
    p.write_text(f"""\
listen: 127.0.0.1:0
workers: 3
status: /status
{extra}sites:
  - default: true
    paths:
      - path: /
        files: {{root: {REPO / 'www'}}}
      - path: /moved
        redirect: {{to: "/", status: 302}}
      - path: /teapot
        respond: {{status: 418, body: "short and stout\\n"}}
      - path: /down
        respond: {{status: 503, body: "resting\\n"}}
""")
    return p


def start(*args, conf=None):
    argv = [run.EDDY]
    if conf:
        argv += ["-c", str(conf)]
    else:
        argv += ["--listen", "127.0.0.1:0", "--root", str(REPO / "www")]
    return spawn_server(argv + list(args) + run.EDDY_ARGS, 1)


def fetch(addr, path, conn=None):
    """(status, content type, body) of GET path, on conn or a new connection."""
    c = conn or http.client.HTTPConnection(*addr, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        if conn is None:
            c.close()


def status_json(addr):
    st, ctype, body = fetch(addr, "/status/json")
    check_eq((st, ctype), (200, "application/json"), "GET /status/json")
    return json.loads(body)


def metric(text, name, labels):
    """The value of the series name{labels} in Prometheus text."""
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    check(m is not None, f"no {name}{labels} in {short(text, 300)}")
    return float(m.group(1))


def metrics_text(addr):
    st, _, body = fetch(addr, "/status/metrics")
    check_eq(st, 200, "GET /status/metrics")
    return body.decode()


# ------------------------------------------------------------------ tests --


def test_tls_handshakes_counted():
    """Two HTTPS requests are two good handshakes; a client that sends no
    TLS is a failed one."""
    with tlstest.start_tls("--status", "/status", "--workers", "1",
                           listen=("127.0.0.1:0",)) as srv:
        for i in range(2):
            tlstest.healthy(srv, f"request {i}")
        with socket.create_connection(srv.tls[0], timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")   # plain text to a TLS port
            with contextlib.suppress(OSError):
                while s.recv(4096):
                    pass
        text = metrics_text(srv.plain[0])
        check_eq(metric(text, "eddy_tls_handshakes_total", '{result="ok"}'), 2, "good handshakes")
        check_eq(metric(text, "eddy_tls_handshakes_total", '{result="failed"}'), 1,
                 "failed handshakes")


def test_accept_pause_at_max_conns_counted():
    """With --max-conns 1, a second connection waits in the backlog while
    the first is open: accepting paused once, said by the counter the
    second connection then reads."""
    with start("--status", "/status", "--max-conns", "1", "--workers", "1") as srv:
        first = http.client.HTTPConnection(*srv.addr, timeout=10)
        check_eq(fetch(srv.addr, "/", first)[0], 200, "the first connection")
        second = http.client.HTTPConnection(*srv.addr, timeout=10)
        second.connect()   # in the backlog: eddy is at its limit
        first.close()
        text = metrics_text_on(second)
        check(metric(text, "eddy_accept_pauses_total", '{reason="max_conns"}') >= 1,
              f"a pause counted: {short(text, 300)}")
        second.close()


def metrics_text_on(conn):
    st, _, body = fetch(None, "/status/metrics", conn)
    check_eq(st, 200, "GET /status/metrics")
    return body.decode()

LOAD = {"/": ("2xx", 7), "/moved": ("3xx", 5), "/teapot": ("4xx", 4), "/nope": ("4xx", 2),
        "/down": ("5xx", 3)}


def test_counters_match_a_known_load():
    curl = need_curl()
    with start(conf=config_file()) as srv:
        want = dict.fromkeys(CLASSES, 0)
        body_bytes = 0
        # Keep-alive connections, several requests each, over the workers.
        conns = [http.client.HTTPConnection(*srv.addr, timeout=10) for _ in range(4)]
        i = 0
        for path, (cls, n) in LOAD.items():
            for _ in range(n):
                st, _, body = fetch(srv.addr, path, conns[i % len(conns)])
                check_eq(st // 100, int(cls[0]), f"GET {path}")
                want[cls] += 1
                body_bytes += len(body)
                i += 1
        for c in conns:
            c.close()
        h2 = 6
        for _ in range(h2):   # a connection each: one h2 request per curl
            p = subprocess.run([curl, "-s", "-o", "/dev/null", "--http2-prior-knowledge",
                                f"http://127.0.0.1:{srv.addr[1]}/"], capture_output=True,
                               timeout=20)
            check_eq(p.returncode, 0, "curl over h2")
        # Closed connections are counted gone once eddy reads their FIN.
        for _ in range(50):
            doc = status_json(srv.addr)
            if doc["total"]["connections"]["open"] == 1:
                break
            threading.Event().wait(0.05)
        polls = _ + 1   # the JSON requests, each counted once answered
        total = doc["total"]
        check_eq(total["requests"]["http/1.1"], {**want, "2xx": want["2xx"] + polls - 1},
                 "HTTP/1.1 requests by class")
        check_eq(total["requests"]["h2"], {**dict.fromkeys(CLASSES, 0), "2xx": h2},
                 "h2 requests by class")
        check_eq(len(doc["workers"]), 3, "workers")
        for key in ("bytes_in", "bytes_out"):
            check_eq(sum(w[key] for w in doc["workers"]), total[key], f"{key} summed")
        for cls in CLASSES:
            check_eq(sum(w["requests"]["http/1.1"][cls] for w in doc["workers"]),
                     total["requests"]["http/1.1"][cls], f"{cls} summed over the workers")
        check(total["bytes_out"] > body_bytes, f"bytes out {total['bytes_out']} <= bodies")
        check(total["bytes_in"] > 100 * sum(n for _, n in LOAD.values()) // 10,
              f"bytes in {total['bytes_in']}")
        check_eq(total["connections"]["accepted"], 4 + h2 + polls, "connections accepted")
        # The status request's own is open and busy.  (On epoll an HTTP/2
        # connection the client closed may still be counted for a while.)
        conns = total["connections"]
        check(conns["open"] >= 1 and conns["idle"] <= conns["open"] - 1, f"connections {conns}")
        count = sum(want.values()) + h2 + polls - 1
        check_eq(total["duration"]["count"], count, "histogram count")
        check_eq(total["duration"]["buckets"][-1], count, "the +Inf bucket")
        # The Prometheus text agrees, with the JSON request now counted.
        st, ctype, text = fetch(srv.addr, "/status/metrics")
        check_eq((st, ctype), (200, "text/plain; version=0.0.4; charset=utf-8"), "/status/metrics")
        text = text.decode()
        check_eq(metric(text, "eddy_requests_total", '{protocol="http/1.1",class="2xx"}'),
                 want["2xx"] + polls, "2xx in the text")
        check_eq(metric(text, "eddy_requests_total", '{protocol="h2",class="2xx"}'), h2, "h2")
        check_eq(sum(metric(text, "eddy_requests_total",
                            f'{{worker="{w}",protocol="http/1.1",class="5xx"}}')
                     for w in (1, 2, 3)), want["5xx"], "5xx over the workers")
        check_eq(metric(text, "eddy_request_duration_seconds_count", ""), count + 1,
                 "histogram count in the text")


def test_promtool_accepts_the_output():
    promtool = tool("promtool", "prometheus")
    with start("--status", "/status", "--workers", "2") as srv:
        for path in ("/", "/nope", "/status/json"):
            fetch(srv.addr, path)
        st, _, text = fetch(srv.addr, "/status/metrics")
        check_eq(st, 200, "GET /status/metrics")
        p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           timeout=20)
        check_eq(p.returncode, 0, f"promtool check metrics: {short(p.stdout + p.stderr, 400)}")


def test_status_allow_refuses_other_clients():
    with start("--status", "/ops", "--status-allow", "10.0.0.0/8",
               "--status-allow", "192.0.2.7") as srv:
        for path in ("/ops", "/ops/metrics", "/ops/json", "/ops/dygraph.min.js"):
            st, _, body = fetch(srv.addr, path)
            check_eq(st, 403, f"GET {path} from 127.0.0.1")
            check(b"eddy_" not in body, "nothing shown")
        check_eq(fetch(srv.addr, "/")[0], 200, "the site still serves")
    with start("--status", "/ops") as srv:   # the default: loopback
        st, ctype, body = fetch(srv.addr, "/ops")
        check_eq((st, ctype), (200, "text/html; charset=utf-8"), "GET /ops from 127.0.0.1")
        check(b'src="/ops/dygraph.min.js"' in body, "the page loads the charts from /ops")
        st, ctype, _ = fetch(srv.addr, "/ops/dygraph.min.js")
        check_eq((st, ctype), (200, "text/javascript; charset=utf-8"), "dygraphs built in")


def test_bad_status_flags_stop_eddy():
    cases = [(["--status", "status"], "the status path wants /NAME"),
             (["--status", "/"], "the status path wants /NAME"),
             (["--status-allow", "10.0.0.0/8"], "--status-allow is for the status page"),
             (["--status", "/s", "--status-allow", "10.0.0.0/40"], "not an address or a block")]
    for args, says in cases:
        p = run.run_eddy_to_exit(*args)
        check_eq(p.returncode, 2, f"exit status of {args}")
        err = p.stderr.decode() if isinstance(p.stderr, bytes) else p.stderr
        check(says in err, f"{args}: {short(err, 200)}")


def reload(srv, conf, text, says):
    conf.write_text(text)
    srv.proc.send_signal(1)   # SIGHUP
    for _ in range(50):
        if says in srv.stderr_text():
            return
        threading.Event().wait(0.1)
    raise Failure(f"reload did not say '{says}': {short(srv.stderr_text(), 300)}")


def test_status_follows_reloads():
    """Off at once; on only after a restart, since the counters are made
    at start (until then the page says 503)."""
    conf = config_file()
    with_status = conf.read_text()
    bare = write_without(conf)
    with start(conf=conf) as srv:
        reload(srv, conf, with_status.replace("status: /status\n", "status: /ops\n"),
               "configuration reloaded")
        check_eq(fetch(srv.addr, "/ops/json")[0], 200, "the new path")
        check_eq(fetch(srv.addr, "/status/json")[0], 404, "not the old one")
    with start(conf=bare) as srv:
        # The restart-only keys are named before the workers take the new
        # sites; only "configuration reloaded" says they have.
        reload(srv, bare, with_status, "configuration reloaded")
        check("status (turned on)" in srv.stderr_text(), "the reload names status as waiting for a restart")
        check_eq(fetch(srv.addr, "/status/json")[0], 503, "no counters until a restart")


def write_without(conf):
    """conf without its status key."""
    p = conf.with_name("no-status.yaml")
    p.write_text(conf.read_text().replace("status: /status\n", ""))
    return p


def load(addr, stop):
    """Requests of every class, on one keep-alive connection, until stop."""
    c = http.client.HTTPConnection(*addr, timeout=10)
    paths = ["/", "/", "/", "/moved", "/nope", "/down"]
    i = 0
    while not stop.is_set():
        try:
            fetch(addr, paths[i % len(paths)], c)
        except (OSError, http.client.HTTPException):
            c.close()
            c = http.client.HTTPConnection(*addr, timeout=10)
        i += 1
        stop.wait(0.005)
    c.close()


def chromium(*args):
    exe = tool("chromium", "chromium")
    profile = tempfile.mkdtemp(prefix="chromium-", dir=TMP)
    return subprocess.run([exe, "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", f"--user-data-dir={profile}", *args],
                          capture_output=True, timeout=90)


def test_dashboard_draws_in_headless_chromium():
    with start(conf=config_file()) as srv:
        stop = threading.Event()
        worker = threading.Thread(target=load, args=(srv.addr, stop), daemon=True)
        worker.start()
        try:
            url = f"http://127.0.0.1:{srv.addr[1]}/status"
            # Virtual time runs the page's one-second polls quickly; each
            # chart marks the rows it drew.
            p = chromium("--virtual-time-budget=8000", "--dump-dom", url)
            dom = p.stdout.decode(errors="replace")
            check_eq(p.returncode, 0, f"chromium --dump-dom: {short(p.stderr, 300)}")
            for chart in ("requests", "bandwidth", "connections", "latency"):
                m = re.search(rf'id="chart-{chart}"[^>]*data-points="(\d+)"', dom)
                check(m is not None, f"chart {chart} drew nothing: {short(dom, 400)}")
                check(int(m.group(1)) > 1, f"chart {chart} drew {m.group(1)} rows")
            shot = REPO / "build" / "dashboard.png"
            shot.parent.mkdir(exist_ok=True)
            shot.unlink(missing_ok=True)
            p = chromium("--virtual-time-budget=8000", "--window-size=1280,1000",
                         f"--screenshot={shot}", url)
            check(shot.exists() and shot.stat().st_size > 10000,
                  f"no screenshot: {short(p.stderr, 300)}")
        finally:
            stop.set()
            worker.join(10)
        return f"screenshot in {shot.relative_to(REPO)}"


if __name__ == "__main__":
    sys.exit(run.main(tests=[(n[5:], f) for n, f in list(globals().items())
                             if n.startswith("test_") and callable(f)],
                      doc=__doc__, need_example=False, cleanup=cleanup,
                      timeouts={"dashboard_draws_in_headless_chromium": 120}))
