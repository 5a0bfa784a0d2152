#!/usr/bin/env python3
"""Integration tests for eddy's configuration file and sites: -t and its
FILE:LINE:COL errors, the example file, the README's key reference, sites
chosen by Host, :authority and SNI, the default site and 421, per-path
handlers (files, redirect, respond), header rules and body limits, flags
over the file, and reloads on SIGHUP (under wrk load: no failed request, no
reset; a broken file changes nothing; listeners kept, added and removed;
a request in flight finishes on the configuration it began with).

    python3 tests/integration/config.py --eddy build/eddy
    python3 tests/integration/config.py --eddy build/eddy -k reload

Same harness, command line, output and exit status as run.py.  Tools:
curl, openssl and wrk (scripts/deps.sh test installs them).
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (run.EDDY is set by run.main)
from run import (Failure, check, check_eq, short, raw_request, get, need_curl,  # noqa: E402
                 read_stdout_lines, spawn_server)

REPO = run.REPO
LISTEN_RE = re.compile(r"^eddy listening on (https?)://(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)/$")
scratch = run.Scratch("eddy-config-")  # the run's scratch directory
cleanup = scratch.cleanup


def tree(name, files):
    """A directory under the scratch one with {relative path: bytes}."""
    root = scratch() / name
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    root.mkdir(parents=True, exist_ok=True)
    return root


def write(name, text):
    p = scratch() / name
    p.write_text(text)
    return p


free_port = run.free_port


class Served:
    """An eddy serving a configuration file; .plain and .tls are the
    (host, port) of its listeners in the order announced."""

    def __init__(self, srv):
        self.srv = srv
        self.plain, self.tls = [], []

    def take(self, line):
        m = LISTEN_RE.match(line)
        if not m:
            return False
        (self.tls if m.group(1) == "https" else self.plain).append((m.group(2), int(m.group(3))))
        return True


@contextlib.contextmanager
def serve(conf, *flags, listeners=1):
    """Starts eddy -c conf and waits for `listeners` ready lines."""
    argv = [run.EDDY, "-c", str(conf), *flags, *run.EDDY_ARGS]
    with spawn_server(argv, 0) as srv:
        s = Served(srv)
        n = [0]

        def take(line):
            if s.take(line):
                n[0] += 1
            return n[0] == listeners

        read_stdout_lines(srv.proc, srv.errfile, take)
        yield s


def host_get(addr, host, path="/", extra=""):
    return raw_request(addr, get(path, host, extra))


def body_of(addr, host, path="/"):
    r = host_get(addr, host, path)
    check_eq(r.status, 200, f"GET {path} with Host {host}")
    return r.body


def wait_stderr(srv, text, timeout=5):
    deadline = time.monotonic() + timeout
    while text not in srv.stderr_text():
        if time.monotonic() > deadline:
            raise Failure(f"no {text!r} on stderr: {short(srv.stderr_text(), 400)}")
        time.sleep(0.02)


def hup_and_wait(s, count):
    """SIGHUP, then waits for the count-th answer to one (reloaded or kept)."""
    s.srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    pat = re.compile(r"SIGHUP: (configuration reloaded|keeping the configuration in use)")
    while len(pat.findall(s.srv.stderr_text())) < count:
        if time.monotonic() > deadline:
            raise Failure(f"no answer to SIGHUP #{count}: {short(s.srv.stderr_text(), 400)}")
        time.sleep(0.02)


def eddy_check(path):
    return run.run_eddy_to_exit("-t", "-c", str(path))


# ----------------------------------------------------------------- -t ---

def test_example_passes_check():
    """eddy.yaml.example, which shows every key, passes -t."""
    p = eddy_check(REPO / "eddy.yaml.example")
    check_eq(p.returncode, 0, f"exit status (stderr {short(p.stderr, 300)})")
    check(b"the configuration is good" in p.stdout, f"stdout: {short(p.stdout)}")


def reference():
    p = run.run_eddy_to_exit("--config-reference")
    check_eq(p.returncode, 0, "--config-reference exit status")
    return p.stdout.decode()


def test_example_shows_every_key():
    """Every key of the reference appears in the example (some commented
    out, where they need files or exclude others)."""
    keys = set(re.findall(r"^\| `([a-z0-9-]+)` \|", reference(), re.M))
    check(len(keys) > 50, f"only {len(keys)} keys in the reference")
    example = (REPO / "eddy.yaml.example").read_text()
    missing = sorted(k for k in keys if not re.search(rf"(^|[\s{{,#-]){re.escape(k)}:", example, re.M))
    check(not missing, f"keys the example does not show: {missing}")


def test_readme_reference_is_the_loaders():
    """README's reference is what --config-reference prints, byte for byte."""
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- config-reference: begin -->\n(.*?)<!-- config-reference: end -->", text, re.S)
    check(m is not None, "README has no config-reference block")
    ours, want = m.group(1).splitlines(), reference().splitlines()
    for i, (a, b) in enumerate(zip(ours, want)):
        check(a == b, f"README's reference differs at its line {i + 1}: {short(a, 200)} "
                      f"instead of {short(b, 200)} (regenerate with build/eddy --config-reference)")
    check_eq(len(ours), len(want), "lines in README's reference")


def test_check_reports_each_error_with_its_place():
    bad = write("bad.yaml", """listen: 127.0.0.1:0
max-body: lots
sites:
  - names: [a.test]
    paths:
      - path: nowhere
        files: {root: /x}
  - names: [A.TEST.]
    colour: blue
""")
    p = eddy_check(bad)
    err = p.stderr.decode()
    check_eq(p.returncode, 2, "exit status")
    for want in (f"{bad}:2:11: max-body wants", f"{bad}:6:15: a path begins with '/'",
                 f"{bad}:8:13: duplicate host: A.TEST.", f"{bad}:9:5: unknown key 'colour'",
                 "4 errors"):
        check(want in err, f"{want!r} not in {short(err, 600)}")
    check_eq(p.stdout, b"", "nothing on stdout")


def test_check_opens_roots():
    """-t finds what the file cannot say alone: a root that does not open."""
    conf = write("noroot.yaml", """sites:
  - default: true
    paths:
      - path: /
        files: {root: /nonexistent/eddy-root}
""")
    p = eddy_check(conf)
    check_eq(p.returncode, 2, "exit status")
    check(f"{conf}:5:23: cannot serve root '/nonexistent/eddy-root'" in p.stderr.decode(),
          f"stderr: {short(p.stderr, 300)}")


def test_syntax_error_has_a_place():
    conf = write("syntax.yaml", "listen: [127.0.0.1:0\nworkers: 1\n")
    p = eddy_check(conf)
    check_eq(p.returncode, 2, "exit status")
    check(re.search(rf"{re.escape(str(conf))}:\d+:\d+: ", p.stderr.decode()),
          f"stderr: {short(p.stderr, 300)}")


# -------------------------------------------------------------- sites ---

TWO_SITES = """listen: 127.0.0.1:0
workers: 1
header: "X-Server-Rule: 1"
sites:
  - names: [a.test, www.a.test]
    headers:
      set: {{X-Site: a}}
    paths:
      - path: /
        files: {{root: {a}}}
  - names: ["*.b.test"]
    paths:
      - path: /
        files: {{root: {b}}}
  - default: true
    paths:
      - path: /
        respond: {{status: 200, body: "default\\n", type: text/plain}}
"""


def two_roots():
    return (tree("a", {"index.html": b"site a\n"}), tree("b", {"index.html": b"site b\n"}))


def test_sites_by_host():
    a, b = two_roots()
    conf = write("two.yaml", TWO_SITES.format(a=a, b=b))
    with serve(conf) as s:
        addr = s.plain[0]
        check_eq(body_of(addr, "a.test"), b"site a\n", "a.test")
        check_eq(body_of(addr, "WWW.A.TEST:8080"), b"site a\n", "case and port ignored")
        check_eq(body_of(addr, "a.test."), b"site a\n", "a trailing dot ignored")
        check_eq(body_of(addr, "x.b.test"), b"site b\n", "a wildcard")
        check_eq(body_of(addr, "y.x.b.test"), b"site b\n", "a wildcard at depth")
        check_eq(body_of(addr, "b.test"), b"default\n", "a wildcard is not its own base")
        check_eq(body_of(addr, "c.test"), b"default\n", "no site names it: the default")
        r = host_get(addr, "a.test")
        check_eq(r.header("X-Site"), "a", "the site's header rule")
        check_eq(r.header("X-Server-Rule"), "1", "the server's header")
        check_eq(host_get(addr, "x.b.test").header("X-Site"), None, "site a's rule is a's")
        check_eq(host_get(addr, "bad host").status, 400, "a Host that is not one")
        r = raw_request(addr, b"GET http://a.test/ HTTP/1.1\r\nHost: c.test\r\n\r\n")
        check_eq(r.body, b"site a\n", "an absolute-form target's authority wins")


def test_sites_by_authority_over_h2():
    curl = need_curl()
    a, b = two_roots()
    conf = write("two-h2.yaml", TWO_SITES.format(a=a, b=b))
    with serve(conf) as s:
        host, port = s.plain[0]
        for name, want in (("a.test", "site a"), ("x.b.test", "site b"), ("c.test", "default")):
            p = subprocess.run([curl, "-s", "--http2-prior-knowledge", "--resolve",
                                f"{name}:{port}:{host}", f"http://{name}:{port}/",
                                "-w", "%{http_version}"], capture_output=True, timeout=10)
            check_eq(p.stdout.decode(), want + "\n2", f"{name} over h2")


def test_no_default_site_is_421_or_404():
    a, _ = two_roots()
    for extra, want in (("", 421), ("no-match: 404\n", 404)):
        conf = write("nodefault.yaml", f"""listen: 127.0.0.1:0
workers: 1
{extra}sites:
  - names: [a.test]
    paths:
      - path: /
        files: {{root: {a}}}
""")
        with serve(conf) as s:
            check_eq(host_get(s.plain[0], "a.test").status, 200, "a.test")
            check_eq(host_get(s.plain[0], "c.test").status, want, f"no site, no default ({extra!r})")


def test_sites_limited_to_listeners():
    """A site with listen takes connections of those addresses alone; a
    nameless one any host there; others are not served there."""
    a, b = two_roots()
    p1, p2 = free_port(), free_port()
    conf = write("listeners.yaml", f"""listen: [127.0.0.1:{p1}, 127.0.0.1:{p2}]
workers: 2
sites:
  - names: [a.test]
    listen: 127.0.0.1:{p1}
    paths: [{{path: /, files: {{root: {a}}}}}]
  - listen: [127.0.0.1:{p2}]
    paths: [{{path: /, files: {{root: {b}}}}}]
""")
    with serve(conf, listeners=2) as s:
        one, two = ("127.0.0.1", p1), ("127.0.0.1", p2)
        check_eq(body_of(one, "a.test"), b"site a\n", "a.test on its address")
        check_eq(host_get(one, "other").status, 421, "another host there")
        check_eq(body_of(two, "a.test"), b"site b\n", "a.test elsewhere: the nameless site")
        check_eq(body_of(two, "other"), b"site b\n", "any host on the nameless site's address")
    bad = write("listeners-bad.yaml", f"""listen: [127.0.0.1:{p1}]
sites:
  - listen: [127.0.0.1:{p2}]
""")
    p = eddy_check(bad)
    check_eq(p.returncode, 2, "exit status")
    check(f"{bad}:3:13: a site listens on '127.0.0.1:{p2}', which is not in listen" in p.stderr.decode(),
          f"stderr {short(p.stderr, 300)}")


def make_pair(name):
    """A self-signed certificate for name, and its key."""
    d = scratch()
    cert, key = d / f"{name}.crt", d / f"{name}.key"
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                        "-days", "2", "-subj", f"/CN={name}", "-addext",
                        f"subjectAltName=DNS:{name}"], capture_output=True, timeout=30)
    check_eq(p.returncode, 0, f"openssl: {short(p.stderr, 200)}")
    return cert, key


def test_sites_by_sni_over_tls():
    """Two sites on one TLS port: SNI picks each one's certificate (curl
    verifies it against that certificate alone), Host its site."""
    curl = need_curl()
    a, b = two_roots()
    (ca, ka), (cb, kb) = make_pair("a.test"), make_pair("b.test")
    conf = write("sni.yaml", f"""listen-tls: 127.0.0.1:0
workers: 1
sites:
  - names: [a.test]
    tls: [{{cert: {ca}, key: {ka}}}]
    paths: [{{path: /, files: {{root: {a}}}}}]
  - names: [b.test]
    tls:
      - cert: {cb}
        key: {kb}
    paths: [{{path: /, files: {{root: {b}}}}}]
""")
    with serve(conf) as s:
        host, port = s.tls[0]
        for name, cert, want in (("a.test", ca, "site a\n"), ("b.test", cb, "site b\n")):
            for proto in ("--http1.1", "--http2"):
                p = subprocess.run([curl, "-sS", proto, "--cacert", str(cert), "--resolve",
                                    f"{name}:{port}:{host}", f"https://{name}:{port}/"],
                                   capture_output=True, timeout=10)
                check_eq((p.returncode, p.stdout.decode()), (0, want),
                         f"{name} {proto} (stderr {short(p.stderr, 200)})")


def test_paths_handlers_rules_and_limits():
    root = tree("paths", {"index.html": b"home\n", "static/app.css": b"body{}\n",
                          "up/index.html": b"up\n"})
    conf = write("paths.yaml", f"""listen: 127.0.0.1:0
workers: 1
sites:
  - default: true
    limits: {{max-body: 100}}
    headers:
      set: {{X-Frame-Options: DENY}}
    paths:
      - path: /
        files: {{root: {root}, cache-control: "max-age=60"}}
      - path: /static
        headers:
          set: {{Cache-Control: "max-age=31536000"}}
          add: {{X-Tag: [one, two]}}
          remove: [X-Frame-Options]
      - path: /up
        limits: {{max-body: 5}}
      - path: /old
        redirect: {{to: "https://new.test/", status: 301, append-path: true}}
      - path: /moved
        redirect: {{to: "/"}}
      - path: /health
        respond: {{status: 203, body: "fine\\n", type: text/plain}}
""")
    with serve(conf) as s:
        addr = s.plain[0]
        r = host_get(addr, "t", "/")
        check_eq((r.status, r.body), (200, b"home\n"), "/")
        check_eq(r.header("Cache-Control"), "max-age=60", "files' cache-control")
        check_eq(r.header("X-Frame-Options"), "DENY", "the site's rule")
        r = host_get(addr, "t", "/static/app.css")
        check_eq((r.status, r.body), (200, b"body{}\n"), "a path without a handler: files above")
        check_eq(r.header("Cache-Control"), "max-age=31536000", "set replaces the file server's")
        check_eq([v for k, v in r.headers if k.lower() == "x-tag"], ["one", "two"], "add, twice")
        check_eq(r.header("X-Frame-Options"), None, "remove")
        r = host_get(addr, "t", "/old/a%20b/c?x=1")
        check_eq((r.status, r.header("Location")), (301, "https://new.test/a%20b/c?x=1"),
                 "redirect with the path appended")
        r = host_get(addr, "t", "/moved/deep")
        check_eq((r.status, r.header("Location")), (308, "/"), "redirect without it")
        r = host_get(addr, "t", "/health")
        check_eq((r.status, r.body, r.header("Content-Type")), (203, b"fine\n", "text/plain"),
                 "respond")
        r = raw_request(addr, b"POST /up/x HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nabcdef")
        check_eq(r.status, 413, "the path's max-body")
        r = raw_request(addr, b"POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nabcdef")
        check_eq(r.status, 203, "the site's max-body elsewhere")
        r = raw_request(addr, b"POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n"
                        + b"x" * 101)
        check_eq(r.status, 413, "past the site's max-body")


def test_path_timeouts():
    """A path's body-timeout closes a stalled upload there, while a stalled
    upload elsewhere waits for the server's header timeout."""
    root = tree("timeouts", {"index.html": b"home\n"})
    conf = write("timeouts.yaml", f"""listen: 127.0.0.1:0
workers: 1
header-timeout: 20
sites:
  - default: true
    paths:
      - path: /
        files: {{root: {root}}}
      - path: /up
        limits: {{body-timeout: 0.5, send-timeout: 0.5}}
""")
    with serve(conf) as s:
        with run.RawConn(s.plain[0]) as up, run.RawConn(s.plain[0]) as other:
            up.send(b"POST /up/x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
            other.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
            t0 = time.monotonic()
            up.sock.settimeout(5)
            try:
                data = up.sock.recv(100)
            except ConnectionResetError:
                data = b""   # closed with unread input: a reset
            check_eq(data, b"", "the stalled upload to /up is closed")
            took = time.monotonic() - t0
            check(0.3 < took < 3, f"closed after {took:.2f} s, not about 0.5")
            other.sock.settimeout(1)
            try:
                data = other.sock.recv(100)
                raise Failure(f"the other upload was answered or closed: {short(data)}")
            except socket.timeout:
                pass


def test_flags_win_over_the_file():
    a, b = two_roots()
    conf = write("flags.yaml", f"listen: 127.0.0.1:1\nworkers: 1\nroot: {a}\n")
    port = free_port()
    with serve(conf, "--listen", f"127.0.0.1:{port}") as s:
        check_eq(s.plain, [("127.0.0.1", port)], "the flag's address replaces the file's")
        check_eq(body_of(s.plain[0], "t"), b"site a\n", "the file's root")
    with serve(conf, "--listen", "127.0.0.1:0", "--root", str(b)) as s:
        check_eq(body_of(s.plain[0], "t"), b"site b\n", "the flag's root")


def test_site_keys_beside_sites_are_refused():
    a, _ = two_roots()
    conf = write("mixed.yaml", f"root: {a}\nsites:\n  - default: true\n")
    p = eddy_check(conf)
    check_eq(p.returncode, 2, "exit status")
    check(f"{conf}:1:1: root makes the one site of flags" in p.stderr.decode(),
          f"stderr {short(p.stderr, 300)}")
    ok = write("ok.yaml", "sites:\n  - default: true\n")
    p = run.run_eddy_to_exit("-t", "-c", str(ok), "--root", str(a))
    check_eq(p.returncode, 2, "--root beside a file with sites")


# ------------------------------------------------------------- reload ---

def test_reload_under_load_changes_roots_and_adds_a_site():
    """wrk keeps 8 connections busy while the file is changed three times
    (a root, then a new site, then a new listener): wrk sees no error and
    no non-2xx answer, and each change is served once reloaded."""
    if not shutil.which("wrk"):
        raise Failure("wrk is not installed (make test installs it)")
    a, b = two_roots()
    c = tree("c", {"index.html": b"site c\n"})
    port = free_port()
    base = ("listen: [127.0.0.1:" + str(port) + "{extra_listen}]\nworkers: 2\nsites:\n"
            "  - default: true\n    paths:\n      - path: /\n        files: {{root: {root}}}\n")
    conf = write("live.yaml", base.format(extra_listen="", root=a))
    with serve(conf) as s:
        addr = s.plain[0]
        check_eq(body_of(addr, "t"), b"site a\n", "before")
        out = {}

        def load():
            out["p"] = subprocess.run(["wrk", "-t1", "-c8", "-d4s", f"http://127.0.0.1:{port}/"],
                                      capture_output=True, text=True, timeout=30)

        t = threading.Thread(target=load)
        t.start()
        try:
            time.sleep(0.8)
            conf.write_text(base.format(extra_listen="", root=b))
            hup_and_wait(s, 1)
            check_eq(body_of(addr, "t"), b"site b\n", "the new root")
            time.sleep(0.5)
            conf.write_text(base.format(extra_listen="", root=b)
                            + f"  - names: [c.test]\n    paths:\n      - path: /\n"
                              f"        files: {{root: {c}}}\n")
            hup_and_wait(s, 2)
            check_eq(body_of(addr, "c.test"), b"site c\n", "the added site")
            time.sleep(0.5)
            port2 = free_port()
            conf.write_text(base.format(extra_listen=f", 127.0.0.1:{port2}", root=a))
            hup_and_wait(s, 3)
            check_eq(body_of(("127.0.0.1", port2), "t"), b"site a\n", "the added listener")
        finally:
            t.join()
        p = out["p"]
        check_eq(p.returncode, 0, f"wrk: {p.stderr}")
        check("Socket errors" not in p.stdout and "Non-2xx" not in p.stdout,
              f"wrk saw errors: {p.stdout}")
        reqs = re.search(r"(\d+) requests in", p.stdout)
        check(reqs and int(reqs.group(1)) > 100, f"wrk made requests: {p.stdout}")
        check("SIGHUP: keeping" not in s.srv.stderr_text(), "every reload was taken")


def test_reload_with_a_broken_file_changes_nothing():
    a, b = two_roots()
    good = f"""listen: 127.0.0.1:0
workers: 1
sites:
  - default: true
    paths:
      - path: /
        files: {{root: {a}}}
"""
    conf = write("broken.yaml", good)
    with serve(conf) as s:
        addr = s.plain[0]
        with run.RawConn(addr) as kept:
            kept.send(get("/", "t"))
            check_eq(kept.read_response().body, b"site a\n", "before")
            conf.write_text(good.replace(str(a), str(b)) + "bogus: [\n")
            hup_and_wait(s, 1)
            err = s.srv.stderr_text()
            check("SIGHUP: keeping the configuration in use" in err, f"stderr {short(err, 300)}")
            check(f"{conf}:" in err, "the error's place is said")
            conf.write_text(good.replace(str(a), "/nonexistent/eddy-root"))
            hup_and_wait(s, 2)
            check("cannot serve root '/nonexistent/eddy-root'" in s.srv.stderr_text(),
                  "a root that does not open is found before anything changes")
            kept.send(get("/", "t"))
            check_eq(kept.read_response().body, b"site a\n", "the old root, same connection")
            check_eq(body_of(addr, "t"), b"site a\n", "the old root, a new connection")


def test_reload_removes_a_listener_and_keeps_its_connections():
    a, _ = two_roots()
    p1, p2 = free_port(), free_port()
    text = f"""listen: [127.0.0.1:{p1}, 127.0.0.1:{p2}]
workers: 1
sites:
  - default: true
    paths: [{{path: /, files: {{root: {a}}}}}]
"""
    conf = write("remove.yaml", text)
    with serve(conf, listeners=2) as s:
        with run.RawConn(("127.0.0.1", p2)) as kept:
            kept.send(get("/", "t"))
            check_eq(kept.read_response().status, 200, "before")
            conf.write_text(text.replace(f", 127.0.0.1:{p2}", ""))
            hup_and_wait(s, 1)
            with socket.socket() as probe:
                probe.settimeout(2)
                refused = probe.connect_ex(("127.0.0.1", p2)) != 0
            check(refused, "the removed address no longer accepts")
            kept.send(get("/", "t"))
            check_eq(kept.read_response().status, 200, "its open connection goes on")
            check_eq(body_of(("127.0.0.1", p1), "t"), b"site a\n", "the kept address")


def test_request_in_flight_finishes_on_its_configuration():
    """A delayed request begun before the reload is answered from the old
    root; the next one from the new."""
    a, b = two_roots()
    text = f"listen: 127.0.0.1:0\nworkers: 1\nroot: {{root}}\ndelay: [/sleep=1]\n"
    conf = write("inflight.yaml", text.format(root=a))
    with serve(conf) as s:
        with run.RawConn(s.plain[0]) as slow:
            slow.send(get("/sleep", "t"))
            time.sleep(0.2)
            conf.write_text(text.format(root=b))
            hup_and_wait(s, 1)
            check_eq(body_of(s.plain[0], "t"), b"site b\n", "a new request: the new root")
            check_eq(slow.read_response().body, b"site a\n", "the one in flight: its root")


def test_reload_names_what_waits_for_a_restart():
    a, _ = two_roots()
    text = f"listen: 127.0.0.1:0\nworkers: 1\nroot: {a}\nmax-body: 100\n"
    conf = write("restart.yaml", text)
    with serve(conf) as s:
        conf.write_text(text.replace("max-body: 100", "max-body: 200").replace("workers: 1", "workers: 2"))
        hup_and_wait(s, 1)
        err = s.srv.stderr_text()
        for key in ("workers", "max-body"):
            check(f"SIGHUP: {key} changed; it takes effect at the next start" in err,
                  f"{key} named: {short(err, 400)}")
        r = raw_request(s.plain[0], b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 150\r\n\r\n"
                        + b"x" * 150)
        check_eq(r.status, 413, "the limit in use is still the first")


if __name__ == "__main__":
    sys.exit(run.main(tests=[(n[5:], f) for n, f in list(globals().items())
                             if n.startswith("test_") and callable(f)],
                      doc=__doc__, need_example=False, cleanup=cleanup,
                      timeouts={"reload_under_load_changes_roots_and_adds_a_site": 40}))
