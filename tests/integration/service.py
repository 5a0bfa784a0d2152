#!/usr/bin/env python3
"""Integration tests for eddy run as a service: systemd's socket activation
(systemd-socket-activate hands eddy its socket; eddy binds none of its own)
and notifications (READY=1, RELOADING=1, STOPPING=1 on NOTIFY_SOCKET), the
privilege drop (--user, and root refused a low port without it), the
descriptor limit raised for --max-conns, and the binary upgrade (SIGUSR2:
a new process takes the listening sockets under wrk load, no request
failed, no connection refused; a new binary that cannot start leaves the
old one serving).

    python3 tests/integration/service.py --eddy build/eddy
    python3 tests/integration/service.py --eddy build/eddy -k upgrade

Same harness, command line, output and exit status as run.py.  Tools: wrk,
systemd-socket-activate (package systemd); the --user tests need root.
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
from run import (Failure, Skip, check, check_eq, short, raw_request, get,  # noqa: E402
                 read_ready_lines, spawn_server, start_eddy, run_eddy_to_exit)

scratch = run.Scratch("eddy-service-")
cleanup = scratch.cleanup


free_port = run.free_port


def listening_sockets(port):
    """How many TCP sockets listen on port (any address), from /proc."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    n += 1
    return n


def index_ok(addr, what):
    r = raw_request(addr, get("/", "t"))
    check_eq(r.status, 200, what)


def wait_for(cond, what, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise Failure(f"{what}: not within {timeout} s")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (its parent has not reaped it yet) has stopped serving.
    with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"
    return False


# --------------------------------------------------- socket activation --


def need_socket_activate():
    if not shutil.which("systemd-socket-activate"):
        raise Failure("systemd-socket-activate is not installed (make test installs systemd)")


def test_socket_activation_uses_the_socket_handed_over():
    """systemd-socket-activate binds the port and starts eddy on the first
    connection; eddy serves it on that socket and binds none of its own."""
    need_socket_activate()
    port = free_port()
    argv = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", run.EDDY,
            "--listen", f"127.0.0.1:{port}", "--root", str(run.WWW), "--workers", "2", *run.EDDY_ARGS]
    with spawn_server(argv, 0) as srv:
        wait_for(lambda: listening_sockets(port) == 1, "the activator listens")
        # eddy starts on this first connection, and answers it.
        index_ok(("127.0.0.1", port), "the first request, which started eddy")
        addrs = read_ready_lines(srv.proc, 1, srv.errfile)
        check_eq(addrs, [("127.0.0.1", port)], "eddy's ready line")
        for i in range(20):
            index_ok(("127.0.0.1", port), f"request {i}")
        check_eq(listening_sockets(port), 1, "listening sockets on the port (none of eddy's own)")
        srv.signal(signal.SIGTERM)
        srv.wait(5)


def test_socket_handed_over_must_match_an_address():
    """A socket no listen address takes would leave its clients waiting:
    eddy refuses to start and says which."""
    need_socket_activate()
    port, other = free_port(), free_port()
    p = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}", run.EDDY,
                          "--listen", f"127.0.0.1:{other}", "--root", str(run.WWW)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=run._die_with_runner)
    try:
        wait_for(lambda: listening_sockets(port) == 1, "the activator listens")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        out, err = p.communicate(timeout=5)
    finally:
        run.reap(p)
    check_eq(p.returncode, 2, f"exit status (stderr: {short(err, 300)})")
    check(f"127.0.0.1:{port} matches no listen" in err.decode(), f"the message: {short(err, 300)}")


# -------------------------------------------------------------- notify --


@contextlib.contextmanager
def notify_socket():
    path = scratch() / f"notify-{time.monotonic_ns()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(5)
    try:
        yield s, str(path)
    finally:
        s.close()


def next_notice(s, want):
    """Reads datagrams until one has the line want; returns its lines."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = s.recv(4096).decode().split("\n")
        if want in lines:
            return lines
    raise Failure(f"no {want} from eddy")


def test_notify_ready_reloading_stopping():
    with notify_socket() as (s, path):
        os.environ["NOTIFY_SOCKET"] = path
        try:
            srv_cm = start_eddy("--workers", "2")
            srv = srv_cm.__enter__()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        try:
            lines = next_notice(s, "READY=1")
            check(f"MAINPID={srv.proc.pid}" in lines, f"MAINPID with READY=1: {lines}")
            index_ok(srv.addr, "serving once READY=1 is sent")
            srv.proc.send_signal(signal.SIGHUP)
            next_notice(s, "RELOADING=1")
            next_notice(s, "READY=1")
            srv.signal(signal.SIGTERM)
            next_notice(s, "STOPPING=1")
            check_eq(srv.wait(5), 0, "exit status")
        finally:
            srv_cm.__exit__(None, None, None)


# -------------------------------------------------------------- user --


def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root (switching users)")


def ids_of(pid):
    """{task id: (real, effective, saved, fs uid)} for each thread."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    out[tid] = tuple(int(x) for x in line.split()[1:5])
    return out


def test_user_drops_privileges_in_every_thread():
    """Every thread runs as the user, without root's groups; the logs eddy
    opened as root are the user's, so SIGUSR1 reopens them as it."""
    need_root()
    import pwd
    nobody = pwd.getpwnam("nobody")
    scratch().chmod(0o755)  # nobody passes through to its directory
    logdir = scratch() / "userlogs"
    logdir.mkdir(mode=0o777, exist_ok=True)
    logdir.chmod(0o777)
    access, errors = logdir / "access.log", logdir / "error.log"
    with start_eddy("--user", "nobody", "--workers", "2", "--access-log", str(access),
                    "--error-log", str(errors)) as srv:
        index_ok(srv.addr, "served as nobody")
        for p in (access, errors):
            check_eq(p.stat().st_uid, nobody.pw_uid, f"{p.name}'s owner")
        os.rename(access, logdir / "access.log.1")
        srv.proc.send_signal(signal.SIGUSR1)
        wait_for(access.exists, "the access log opened again, as nobody")
        index_ok(srv.addr, "served after the reopen")
        ids = ids_of(srv.proc.pid)
        check(len(ids) >= 3, f"main thread and two workers: {ids}")
        for tid, uids in ids.items():
            check_eq(uids, (nobody.pw_uid,) * 4, f"thread {tid}'s uids")
        with open(f"/proc/{srv.proc.pid}/status") as f:
            groups = next(line for line in f if line.startswith("Groups:")).split()[1:]
        check("0" not in groups, f"root's group dropped: {groups}")


def test_root_refuses_a_low_port_without_user():
    need_root()
    p = run_eddy_to_exit("--listen", "127.0.0.1:1023", "--root", str(run.WWW))
    check_eq(p.returncode, 2, "exit status")
    err = p.stderr.decode()
    check("running as root with port 1023" in err and "--user" in err, f"message: {short(err, 300)}")


def test_unknown_user_is_refused():
    p = run_eddy_to_exit("--listen", "127.0.0.1:0", "--user", "no-such-user-here", "--root", str(run.WWW))
    check_eq(p.returncode, 2, "exit status")
    check("--user no-such-user-here: no such user" in p.stderr.decode(), f"message: {short(p.stderr, 300)}")


# ---------------------------------------------------- descriptor limit --


def soft_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise Failure("no Max open files line")


@contextlib.contextmanager
def limited(soft, hard, *args):
    argv = ["prlimit", f"--nofile={soft}:{hard}", run.EDDY, "--listen", "127.0.0.1:0",
            "--root", str(run.WWW), *args, *run.EDDY_ARGS]
    with spawn_server(argv, 1) as srv:
        yield srv


def test_fd_limit_raised_for_max_conns():
    """--max-conns 1000 on one worker wants 2 × 1000 + 256 descriptors:
    the soft limit goes there (not to the hard limit), with no warning."""
    with limited(512, 8192, "--max-conns", "1000", "--workers", "1") as srv:
        check_eq(soft_nofile(srv.proc.pid), 2256, "soft limit")
        check("[warn]" not in srv.stderr_text(), f"no warning: {srv.stderr_text()}")


def test_fd_limit_short_warns_once():
    with limited(256, 1024, "--max-conns", "1000", "--workers", "2") as srv:
        check_eq(soft_nofile(srv.proc.pid), 1024, "soft limit: the hard one")
        err = srv.stderr_text()
        check_eq(err.count("[warn]"), 1, f"one warning line: {err}")
        check("needs about 4256 descriptors" in err and "LimitNOFILE" in err, f"the line: {err}")


def test_fd_limit_without_max_conns_is_the_hard_limit():
    with limited(256, 2048) as srv:
        check_eq(soft_nofile(srv.proc.pid), 2048, "soft limit")


# ------------------------------------------------------------- upgrade --


def took_over_pid(srv, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"SIGUSR2: PID (\d+) took over", srv.stderr_text())
        if m:
            return int(m.group(1))
        failed = re.search(r"SIGUSR2: upgrade failed: .*", srv.stderr_text())
        if failed:
            raise Failure(failed.group(0))
        time.sleep(0.05)
    raise Failure(f"no takeover line: {short(srv.stderr_text(), 300)}")


def test_upgrade_under_load_loses_nothing():
    """wrk keeps 8 connections busy against two workers while SIGUSR2
    starts a new eddy on the same sockets and the old one drains: wrk sees
    no socket error and no failed response; the new process serves on."""
    if not shutil.which("wrk"):
        raise Failure("wrk is not installed (make test installs it)")
    with start_eddy("--workers", "2") as srv:
        port = srv.addr[1]
        out = {}

        def load():
            out["p"] = subprocess.run(["wrk", "-t1", "-c8", "-d4s", f"http://127.0.0.1:{port}/"],
                                      capture_output=True, text=True, timeout=30)

        t = threading.Thread(target=load)
        t.start()
        time.sleep(1.2)
        srv.signal(signal.SIGUSR2)
        new = took_over_pid(srv)
        try:
            check_eq(srv.wait(10), 0, "the old eddy's exit status")
            t.join(40)
            p = out.get("p")
            check(p is not None, "wrk finished")
            check_eq(p.returncode, 0, f"wrk: {p.stderr}")
            check("Socket errors" not in p.stdout and "Non-2xx" not in p.stdout,
                  f"wrk saw errors: {p.stdout}")
            reqs = re.search(r"(\d+) requests in", p.stdout)
            check(reqs and int(reqs.group(1)) > 100, f"wrk made requests: {p.stdout}")
            check(pid_alive(new), "the new eddy runs")
            index_ok(srv.addr, "the new eddy answers")
            check_eq(listening_sockets(port), 2, "the two workers' sockets, handed over")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(new, signal.SIGTERM)
            with contextlib.suppress(Failure):
                wait_for(lambda: not pid_alive(new), "the new eddy stops")


def test_failed_upgrade_keeps_serving():
    """When the binary at eddy's path cannot start, the old eddy says so
    and serves on."""
    copy = scratch() / "eddy-copy"
    shutil.copy(run.EDDY, copy)
    argv = [str(copy), "--listen", "127.0.0.1:0", "--root", str(run.WWW), *run.EDDY_ARGS]
    with spawn_server(argv, 1) as srv:
        # A package replacing the file does a rename; so does this.
        broken = scratch() / "eddy-broken"
        broken.write_text("#!/bin/sh\nexit 3\n")
        broken.chmod(0o755)
        os.replace(broken, copy)
        srv.proc.send_signal(signal.SIGUSR2)
        wait_for(lambda: "upgrade failed" in srv.stderr_text(), "the failure line")
        err = srv.stderr_text()
        check("exited with status 3 before listening" in err and "still serving" in err,
              f"the line: {short(err, 300)}")
        index_ok(srv.addr, "the old eddy serves on")


if __name__ == "__main__":
    sys.exit(run.main(tests=[(n[5:], f) for n, f in list(globals().items())
                             if n.startswith("test_") and callable(f)],
                      doc=__doc__, need_example=False, cleanup=cleanup,
                      timeouts={"upgrade_under_load_loses_nothing": 60}))
