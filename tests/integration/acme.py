#!/usr/bin/env python3
"""Integration tests for eddy's automatic certificates (ACME, RFC 8555)
against Debian's pebble, a test CA that validates for real: HTTP-01 and
TLS-ALPN-01, two names on one certificate chosen by SNI, a restart that
reuses the stored certificate, a refused validation retried with backoff,
a short-lived certificate renewed under wrk load with no failed request,
renewal information (RFC 9773, from a stand-in in front of pebble) moving
the renewal, and SIGTERM while the CA is silent.

    python3 tests/integration/acme.py --eddy build/eddy
    python3 tests/integration/acme.py --eddy build/eddy -k http01

Same harness, output and exit status as run.py.  Each test starts its own
pebble and pebble-challtestsrv (its DNS server, which answers 127.0.0.1
for every name) on free ports, with a TLS certificate for pebble's own
endpoint made here by openssl; eddy trusts it with --acme-ca-root, and
curl trusts pebble's issuing root, fetched from its management port.
pebble rejects 5% of nonces as it does by default, so the client's
badNonce retries run too.

Tools: pebble (pebble, pebble-challtestsrv), openssl, curl, wrk; scripts/deps.sh
test installs them.
"""

import base64
import calendar
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402
import tls as tlstest  # noqa: E402
from run import Failure, Skip, check, check_eq, short, reap  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="eddy-acme-"))
# How long obtaining a certificate may take here (pebble answers at once
# with PEBBLE_VA_NOSLEEP; a loaded machine is slow).
OBTAIN_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(*tools):
    for t in tools:
        if not any(os.access(os.path.join(d, t), os.X_OK) for d in os.environ["PATH"].split(":")):
            raise Skip(f"{t} is not installed; make test installs it")


def pebble_tls_cert():
    """A certificate for pebble's own HTTPS endpoint (127.0.0.1), once."""
    cert, key = TMP / "pebble.crt", TMP / "pebble.key"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                        "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
    return cert, key


class Pebble:
    """pebble and its DNS server, validating against eddy's ports."""

    def __init__(self, http_port, tls_port, validity_s=None):
        need("pebble", "pebble-challtestsrv", "openssl", "curl")
        cert, key = pebble_tls_cert()
        self.ca_root = str(cert)
        self.port, self.mgmt, dns, dns_mgmt = free_port(), free_port(), free_port(), free_port()
        conf = {"pebble": {"listenAddress": f"127.0.0.1:{self.port}",
                           "managementListenAddress": f"127.0.0.1:{self.mgmt}",
                           "certificate": str(cert), "privateKey": str(key),
                           "httpPort": http_port, "tlsPort": tls_port,
                           "ocspResponderURL": "", "externalAccountBindingRequired": False}}
        if validity_s:
            conf["pebble"]["certificateValidityPeriod"] = validity_s
        path = TMP / f"pebble-{self.port}.json"
        path.write_text(json.dumps(conf))
        self.log = open(TMP / f"pebble-{self.port}.log", "w+b")
        self.dns = subprocess.Popen(
            ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
             "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-management", f"127.0.0.1:{dns_mgmt}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run._PROCS.append(self.dns)
        self.proc = subprocess.Popen(
            ["pebble", "-config", str(path), "-dnsserver", f"127.0.0.1:{dns}"],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PEBBLE_VA_NOSLEEP": "1"})
        run._PROCS.append(self.proc)
        self.directory = f"https://127.0.0.1:{self.port}/dir"
        ctx = ssl.create_default_context(cafile=self.ca_root)
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(self.directory, context=ctx, timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Failure(f"pebble did not start: {short(self.log_text(), 300)}")
                time.sleep(0.1)
        root = urllib.request.urlopen(f"https://127.0.0.1:{self.mgmt}/roots/0", context=ctx,
                                      timeout=5).read()
        self.issuer_root = TMP / f"root-{self.port}.pem"
        self.issuer_root.write_bytes(root)

    def log_text(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def close(self):
        reap(self.proc)
        reap(self.dns)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start(pebble, state, names, *extra, plain=None, tls=None, directory=None):
    """eddy with ACME for names against pebble; plain and tls are its ports.
    Stopped with SIGTERM after the test: exit 0, no sanitizer report."""
    argv = ["--acme-directory", directory or pebble.directory, "--acme-ca-root", pebble.ca_root,
            "--state-dir", str(state), "--acme-email", "ops@a.test"]
    for n in names:
        argv += ["--acme-domain", n]
    srv = tlstest.start_tls(*argv, *extra, pairs=[], tls_listen=(f"127.0.0.1:{tls}",),
                            listen=(f"127.0.0.1:{plain}",) if plain else ())
    return srv


class RenewalInfo:
    """A stand-in for a CA that offers renewal information (RFC 9773;
    pebble 2.4 has none): HTTPS on a free port, with pebble's certificate,
    answering the directory as pebble's plus renewalInfo, and renewal
    information with the window the test sets (Retry-After: 1).  Every
    other URL in the directory stays pebble's own."""

    def __init__(self, pebble):
        outer = self
        self.window = (0, 0)
        self.asked = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, body, extra=()):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/dir":
                    d = json.loads(urllib.request.urlopen(pebble.directory, context=outer.ctx,
                                                          timeout=5).read())
                    d["renewalInfo"] = f"https://127.0.0.1:{outer.port}/renewal-info/"
                    self.reply(d)
                elif self.path.startswith("/renewal-info/"):
                    outer.asked.append(self.path[len("/renewal-info/"):])
                    fmt = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
                    self.reply({"suggestedWindow": {"start": fmt(outer.window[0]),
                                                    "end": fmt(outer.window[1])}},
                               [("Retry-After", "1")])
                else:
                    self.send_error(404)

        self.ctx = ssl.create_default_context(cafile=pebble.ca_root)
        cert, key = pebble_tls_cert()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(str(cert), str(key))
        self.server.socket = sctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.directory = f"https://127.0.0.1:{self.port}/dir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def cert_id(der):
    """RFC 9773's identifier of a certificate, by openssl's reading of it."""
    path = TMP / "leaf.der"
    path.write_bytes(der)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", str(path), "-noout",
                          "-serial", "-ext", "authorityKeyIdentifier"],
                         capture_output=True, text=True, check=True).stdout
    serial = re.search(r"serial=([0-9A-Fa-f]+)", out).group(1)
    serial = bytes.fromhex(serial if len(serial) % 2 == 0 else "0" + serial)
    if serial[0] & 0x80:
        serial = b"\0" + serial
    aki = bytes.fromhex(re.search(r"Identifier:\s*(?:keyid:)?([0-9A-Fa-f:]+)", out).group(1)
                        .replace(":", ""))
    b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
    return f"{b64(aki)}.{b64(serial)}"


def wait_log(srv, text, count=1, timeout=OBTAIN_S):
    deadline = time.monotonic() + timeout
    while srv.stderr_text().count(text) < count:
        srv.check_alive()
        if time.monotonic() > deadline:
            raise Failure(f"no '{text}' (x{count}) within {timeout} s; "
                          f"stderr: {short(srv.stderr_text(), 600)}")
        time.sleep(0.1)


def curl_https(pebble, name, port):
    """GET / from name over https (SNI name), verified by pebble's root."""
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--resolve", f"{name}:{port}:127.0.0.1",
                          "--cacert", str(pebble.issuer_root), "-o", "/dev/null",
                          "-w", "%{http_code} %{http_version}", f"https://{name}:{port}/"],
                         capture_output=True, text=True)
    check(out.returncode == 0, f"curl https://{name}: {out.stderr.strip()}")
    return out.stdout


def served_cert(name, port):
    """The certificate eddy presents for SNI name, as DER."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t:
            return t.getpeercert(binary_form=True)


def test_http01_two_names():
    plain, tls = free_port(), free_port()
    with Pebble(plain, tls) as pebble:
        state = TMP / "st-http01"
        with start(pebble, state, ["a.test", "b.test"], plain=plain, tls=tls) as srv:
            wait_log(srv, "in use")
            for name in ("a.test", "b.test"):
                check_eq(curl_https(pebble, name, tls), "200 2", f"https://{name}/ over h2")
            check("Attempting to validate w/ HTTP" in pebble.log_text(), "pebble validated by HTTP")
            pair = state / "certs" / "a.test" / "pair.pem"
            check_eq(oct(pair.stat().st_mode & 0o777), "0o600", "pair.pem's mode")
            check_eq(oct((state / "accounts").stat().st_mode & 0o777), "0o700", "accounts/ mode")
            # The plain listener still serves the site.
            check_eq(run.raw_request(srv.plain[0], run.get("/")).status, 200, "plain GET /")


def test_tls_alpn01():
    plain, tls = free_port(), free_port()
    with Pebble(plain, tls) as pebble:
        # A plain listener too, with --redirect-https: TLS-ALPN-01 needs
        # neither, and HTTP-01 is not asked for.
        with start(pebble, TMP / "st-alpn", ["c.test"], "--acme-challenge", "tls-alpn-01",
                   "--redirect-https", plain=plain, tls=tls) as srv:
            wait_log(srv, "in use")
            check_eq(curl_https(pebble, "c.test", tls), "200 2", "https://c.test/")
            check("Attempting to validate w/ HTTP" not in pebble.log_text(), "no HTTP-01 asked")


def test_http01_under_redirect_https():
    plain, tls = free_port(), free_port()
    with Pebble(plain, tls) as pebble:
        with start(pebble, TMP / "st-redirect", ["d.test"], "--redirect-https",
                   plain=plain, tls=tls) as srv:
            wait_log(srv, "in use")
            check_eq(curl_https(pebble, "d.test", tls), "200 2", "https://d.test/")
            resp = run.raw_request(srv.plain[0], run.get("/x", host="d.test"))
            check_eq(resp.status, 308, "other plain requests still redirected")


def test_restart_reuses_stored_certificate():
    plain, tls = free_port(), free_port()
    with Pebble(plain, tls) as pebble:
        state = TMP / "st-restart"
        with start(pebble, state, ["e.test"], plain=plain, tls=tls) as srv:
            wait_log(srv, "in use")
            first = served_cert("e.test", tls)
            orders = pebble.log_text().count("POST /order-plz")
        with start(pebble, state, ["e.test"], plain=plain, tls=tls) as srv:
            # Served before the ACME thread could have asked for anything.
            check_eq(served_cert("e.test", tls), first, "the stored certificate")
            check_eq(curl_https(pebble, "e.test", tls), "200 2", "https://e.test/")
            time.sleep(1)
            check("obtaining" not in srv.stderr_text(), "nothing asked of the CA")
            check_eq(pebble.log_text().count("POST /order-plz"), orders, "no new order")


def test_refused_validation_backs_off():
    plain, tls, elsewhere = free_port(), free_port(), free_port()
    # pebble validates HTTP-01 against another server, which answers the
    # challenge with a 404: a wrong answer, and the authorization fails.
    with Pebble(elsewhere, tls) as pebble, \
            run.start_eddy(listen=(f"127.0.0.1:{elsewhere}",)):
        with start(pebble, TMP / "st-refused", ["f.test"], "--acme-retry", "0.5",
                   plain=plain, tls=tls) as srv:
            wait_log(srv, "trying again in", count=3, timeout=30)
            err = srv.stderr_text()
            check("http-01 for f.test failed" in err and "404" in err,
                  f"the CA's reason logged: {short(err, 400)}")
            check("trying again in 1 s" in err and "trying again in 2 s" in err,
                  f"backoff doubles: {short(err, 400)}")
            check("Attempting to validate w/ HTTP" in pebble.log_text(), "pebble looked")
            check_eq(run.raw_request(srv.plain[0], run.get("/")).status, 200, "still serving")


def test_renewal_under_load():
    need("wrk")
    plain, tls = free_port(), free_port()
    # 12 s certificates: renewed at 8 s, while wrk runs.
    with Pebble(plain, tls, validity_s=12) as pebble:
        with start(pebble, TMP / "st-renew", ["g.test"], plain=plain, tls=tls) as srv:
            wait_log(srv, "in use")
            first = served_cert("g.test", tls)
            # Beside wrk's kept connections, new ones: each handshake verified
            # against pebble's root, before, during and after the swap.
            fresh, stop = [], threading.Event()

            def handshakes():
                while not stop.is_set():
                    try:
                        fresh.append(curl_https(pebble, "g.test", tls))
                    except Failure as e:
                        fresh.append(str(e))
                    time.sleep(0.2)

            t = threading.Thread(target=handshakes)
            t.start()
            try:
                out = subprocess.run(["wrk", "-t1", "-c8", "-d12s", f"https://127.0.0.1:{tls}/"],
                                     capture_output=True, text=True, timeout=40)
            finally:
                stop.set()
                t.join()
            check(out.returncode == 0, f"wrk: {out.stderr}")
            bad = [r for r in fresh if r != "200 2"]
            check(len(fresh) >= 10 and not bad, f"new connections: {len(fresh)}, failed: {bad[:3]}")
            check("Socket errors" not in out.stdout and "Non-2xx" not in out.stdout,
                  f"wrk saw no error: {out.stdout}")
            check("renewing" in srv.stderr_text(), "renewed")
            wait_log(srv, "in use", count=2)
            check(served_cert("g.test", tls) != first, "the new certificate is served")


def test_sigterm_while_the_ca_is_silent():
    """A CA that takes the connection and never answers: SIGTERM still
    ends eddy at once (the request to the CA is cut, not waited for)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with tlstest.start_tls("--acme-domain", "h.test", "--state-dir", str(TMP / "st-silent"),
                               "--acme-directory", f"http://127.0.0.1:{port}/dir", pairs=[],
                               tls_listen=("127.0.0.1:0",), listen=("127.0.0.1:0",)) as srv:
            wait_log(srv, "obtaining", timeout=10)
            conn, _ = silent.accept()  # the client's request, never answered
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            code = srv.wait(10)
            took = time.monotonic() - t0
            conn.close()
            check_eq(code, 0, f"exit status (stderr: {short(srv.stderr_text(), 300)})")
            check(took < 3, f"exited {took:.1f} s after SIGTERM")


def test_renewal_information_moves_renewal():
    """A CA with renewal information: eddy asks for the window of the
    certificate it holds (by its RFC 9773 identifier), schedules the renewal
    inside it rather than at two thirds, and renews at once when the CA
    moves the window into the past."""
    plain, tls = free_port(), free_port()
    with Pebble(plain, tls) as pebble:
        ari = RenewalInfo(pebble)
        try:
            now = time.time()
            ari.window = (now + 86400, now + 90000)
            with start(pebble, TMP / "st-ari", ["i.test"], plain=plain, tls=tls,
                       directory=ari.directory) as srv:
                wait_log(srv, "in use")
                err = srv.stderr_text()
                m = re.search(r"renewal at (\S+ \S+) UTC \(the CA's renewal window\)", err)
                check(m, f"the renewal follows the CA's window: {short(err, 400)}")
                at = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
                check(ari.window[0] <= at < ari.window[1], f"renewal at {m.group(1)} in the window")
                first = served_cert("i.test", tls)
                check(cert_id(first) in ari.asked, f"asked for {cert_id(first)}: {ari.asked}")
                time.sleep(2)
                check("renewing" not in srv.stderr_text(), "not renewed before the window")
                ari.window = (time.time() - 120, time.time() - 60)
                wait_log(srv, "in use", count=2, timeout=30)
                check("renewing" in srv.stderr_text(), "renewed when the window passed")
                check(served_cert("i.test", tls) != first, "the new certificate is served")
        finally:
            ari.close()


def test_flags_checked():
    """Each misuse exits 2 with a line saying what is wrong, before serving."""
    state = str(TMP / "st-flags")
    cases = [
        (["--listen", "127.0.0.1:0", "--acme-domain", "a.test"], "--listen-tls"),
        (["--listen-tls", "127.0.0.1:0", "--acme-domain", "*.a.test", "--state-dir", state],
         "not a domain name"),
        (["--listen-tls", "127.0.0.1:0", "--acme-domain", "a b", "--state-dir", state],
         "not a domain name"),
        (["--listen", "127.0.0.1:0", "--acme-email", "x@a.test"], "need --acme-domain"),
        (["--listen-tls", "127.0.0.1:0", "--acme-domain", "a.test", "--acme-challenge", "dns-01"],
         "http-01 or tls-alpn-01"),
        (["--listen-tls", "127.0.0.1:0", "--acme-domain", "a.test", "--acme-challenge", "http-01"],
         "--listen address"),
        (["--listen-tls", "127.0.0.1:0", "--acme-domain", "a.test", "--acme-retry", "0"],
         "--acme-retry"),
        (["--listen-tls", "127.0.0.1:0", "--acme-domain", "a.test", "--state-dir",
          "/proc/none/x"], "state directory"),
    ]
    for args, says in cases:
        r = run.run_eddy_to_exit(*args)
        err = r.stderr.decode(errors="replace")
        check_eq(r.returncode, 2, f"exit status of eddy {' '.join(args)} ({short(err, 200)})")
        check(says in err, f"eddy {' '.join(args)}: stderr {short(err, 200)} lacks {says!r}")


TESTS = [(n, f) for n, f in list(globals().items()) if n.startswith("test_") and callable(f)]

if __name__ == "__main__":
    import shutil
    sys.exit(run.main(TESTS, __doc__, need_example=False,
                      timeouts={"test_renewal_under_load": 90,
                                "test_renewal_information_moves_renewal": 90, "test_http01_two_names": 90,
                                "test_tls_alpn01": 90, "test_http01_under_redirect_https": 90,
                                "test_restart_reuses_stored_certificate": 120,
                                "test_refused_validation_backs_off": 60},
                      cleanup=lambda: shutil.rmtree(TMP, ignore_errors=True)))
