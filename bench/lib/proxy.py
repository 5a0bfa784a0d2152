#!/usr/bin/python3
"""The report of bench/proxy.sh (Python 3 standard library only).

  report ...   print the proxy table, write Markdown and JSON
               (OUTDIR/proxy-latest.{md,json} and proxy-DATE.{md,json})

The runs themselves are bench.py's `measure` lines (with --backend-pid, so
the backend's CPU is recorded apart); this merges them as bench.py does
(best of the rounds, undisturbed attempts first) and compares eddy with the
best peer.  The parts both reports share (table cells and ratios, the best
peer, notes and hints on disturbed runs, the machine, writing the files,
the common arguments) are bench.py's, imported.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

BACKEND = "backend"
SCEN = {"p1": "(p1) 100-byte response, keep-alive, 64 conns",
        "p2": "(p2) 1 MiB response, keep-alive, 16 conns"}
SHORT = {"p1": "small", "p2": "1MiB"}
# (scenario, key, unit, higher is better (None: no ratio), format, backend column)
# backend column: "self" shows the backend-alone run's own figure, None "–".
ROWS = [
    ("p1", "rps", "req/s", True, "{:,.0f}", "self"),
    ("p1", "cpu_us_per_req", "proxy CPU µs/req", False, "{:.2f}", None),
    ("p1", "user_us_per_req", "proxy user-space CPU µs/req", False, "{:.2f}", None),
    ("p1", "p99_ms", "p99 latency ms", False, "{:.2f}", "self"),
    ("p1", "backend_cpu_us_per_req", "backend CPU µs/req", None, "{:.2f}", "self-cpu"),
    ("p1", "backend_conns", "backend connections opened", None, "{:,.0f}", None),
    ("p1", "cpu0_util", "CPU 0 busy", None, "{:.0%}", "self"),
    ("p1", "cpu1_util", "CPU 1 busy", None, "{:.0%}", "self"),
    ("p2", "mbps", "MB/s", True, "{:,.0f}", "self"),
    ("p2", "rps", "req/s", True, "{:,.0f}", "self"),
    ("p2", "cpu_us_per_req", "proxy CPU µs/req", False, "{:.1f}", None),
    ("p2", "backend_cpu_us_per_req", "backend CPU µs/req", None, "{:.1f}", "self-cpu"),
    ("p2", "backend_conns", "backend connections opened", None, "{:,.0f}", None),
    ("p2", "cpu0_util", "CPU 0 busy", None, "{:.0%}", "self"),
    ("p2", "cpu1_util", "CPU 1 busy", None, "{:.0%}", "self"),
]
# The goals: eddy's proxy CPU per small response at most 0.8× the
# best peer's; the 1 MiB response at least as fast (MB/s) as the best peer.
GOALS = [("p1", "small-response proxy CPU per request", "cpu_us_per_req", 0.8, "µs"),
         ("p2", "1 MiB response rate", "mbps", 1.0, "MB/s")]


def derive(res, backend_cpu):
    """Figures computed from a merged record: p99 in ms, and how busy each
    CPU was (the proxy on CPU 0, wrk on CPU 1, the backend on backend_cpu;
    in the backend-alone run the backend is the "server")."""
    for (s, scen), r in res.items():
        if r.get("p99_us") is not None:
            r["p99_ms"] = r["p99_us"] / 1000
        if r.get("server_cpu_util") is None or r.get("client_cpu_util") is None:
            continue
        if s == BACKEND:
            proxy, backend = 0.0, r["server_cpu_util"]
        else:
            proxy, backend = r["server_cpu_util"], r.get("backend_cpu_util") or 0.0
        r["cpu0_util"] = proxy + (backend if backend_cpu == "0" else 0.0)
        r["cpu1_util"] = r["client_cpu_util"] + (backend if backend_cpu != "0" else 0.0)
    return res


def cpu_labels(backend_cpu):
    if backend_cpu == "0":
        return "CPU 0 busy (proxy + backend)", "CPU 1 busy (wrk)"
    return "CPU 0 busy (proxy)", "CPU 1 busy (wrk + backend)"


def build_table(res, status, servers, backend_cpu):
    header = ["scenario", "metric", "backend alone", *servers, "eddy ÷ best peer"]
    rows, notes = [], []
    labels = dict(zip(("cpu0_util", "cpu1_util"), cpu_labels(backend_cpu)))
    for scen, key, unit, higher, f, bcol in ROWS:
        unit = labels.get(key, unit)
        cells = [SCEN[scen], unit + ("" if higher is None else " ↑" if higher else " ↓")]
        b = res.get((BACKEND, scen))
        if bcol is None:
            cells.append("–")
        else:
            bkey = "cpu_us_per_req" if bcol == "self-cpu" else key
            cells.append(bench.cell(b, bkey, f)[0])
        vals = {}
        for s in servers:
            if status.get(s) != "ok":
                cells.append(status.get(s, "not run"))
                continue
            r = res.get((s, scen))
            if r is None and res.get((s, "_died")):
                cells.append("not run (died)")
                continue
            text, v = bench.cell(r, key, f)
            cells.append(text)
            if v:
                vals[s] = v
            if r is not None and not r.get("valid"):
                note = bench.invalid_note(s, SHORT[scen], r)
                if note not in notes:
                    notes.append(note)
        cells.append("–" if higher is None else bench.ratio_cell(vals, higher))
        rows.append(cells)
    for b in (res.get((BACKEND, s)) for s in SCEN):
        if b is not None and not b.get("valid"):
            notes.append(f"backend alone: invalid — errors {json.dumps(b.get('errors'))}")
    return header, rows, notes


def goal_lines(res, servers):
    out = []
    for scen, what, key, goal, unit in GOALS:
        vals = bench.valid_figures(res, scen, key, servers)
        higher = key == "mbps"
        b = bench.best_peer(vals, higher)
        if b is None:
            out.append(f"{what}: not measured (eddy or every peer without a valid run)")
            continue
        best, peer, rt = b
        ok = rt >= goal if higher else rt <= goal
        line = (f"{what}: eddy {vals['eddy']:,.2f} {unit}, {rt:.2f}× {best}'s "
                f"{peer:,.2f} (goal {'≥' if higher else '≤'} {goal:.2f}×): "
                + ("met" if ok else "NOT met"))
        if not ok and not higher:
            line += (f" — eddy needs ≤ {goal * peer:.2f} µs, "
                     f"{vals['eddy'] / (goal * peer):.2f}× over")
        out.append(line)
    return out


def hints(res, servers, busy_before, backend_cpu):
    out = []
    other = "CPU 1 (wrk)" if backend_cpu == "0" else "CPU 1 (wrk + backend)"
    before = bench.busy_before_hint(busy_before)
    if before:
        out.append(before)
    for scen, key in (("p1", "rps"), ("p2", "mbps")):
        b = res.get((BACKEND, scen))
        fastest = max(((r.get(key) or 0, s) for (s, sc), r in res.items()
                       if sc == scen and s in servers and r.get("valid")), default=None)
        if b and b.get("valid") and fastest and fastest[0]:
            rt = b[key] / fastest[0]
            out.append(f"{SHORT[scen]}: the backend alone (wrk straight to it, pinned as in "
                       f"the proxy runs) did {b[key]:,.0f} {'req/s' if key == 'rps' else 'MB/s'}, "
                       f"{rt:.2f}× the fastest proxy's ({fastest[1]})"
                       + (": the backend is not the bottleneck" if rt >= 1.15 else
                          ": wrk and the backend may bound every proxy here; compare CPU µs/req"))
    for (s, scen), r in sorted(res.items()):
        if s not in servers or not r.get("valid"):
            continue
        c0, c1 = r.get("cpu0_util") or 0, r.get("cpu1_util") or 0
        if c0 < 0.85 and c1 > 0.9:
            out.append(f"{s} {SHORT[scen]}: CPU 0 at {c0:.0%}, {other} at {c1:.0%}: the "
                       f"rate is bounded by CPU 1; compare proxy CPU µs/req")
        elif c0 < 0.6 and c1 < 0.8:
            out.append(f"{s} {SHORT[scen]}: neither CPU saturated (CPU 0 {c0:.0%}, CPU 1 "
                       f"{c1:.0%}): requests wait on something else (latency: p99 "
                       f"{(r.get('p99_us') or 0) / 1000:.1f} ms)")
    p99 = {s: r.get("p99_us") for (s, sc), r in res.items()
           if sc == "p1" and s in servers and r.get("valid") and r.get("p99_us")}
    if p99:
        best = min(p99.values())
        for s, v in sorted(p99.items()):
            if v > 10 * best and v > 10000:
                out.append(f"{s} small: p99 latency {v / 1000:.1f} ms against {best / 1000:.2f} ms "
                           f"for the best: some responses stall (a ~40 ms stall is the mark of "
                           f"Nagle's algorithm waiting for a delayed ACK)")
    busy, measured = bench.disturbed_runs(res, SHORT)
    if busy:
        out.append(f"other processes used more than 10% of a CPU during {len(busy)} of "
                   f"{measured} measured runs (up to ~{busy[-1][0]:.0%}, in {busy[-1][1]}): "
                   f"those figures may be disturbed")
    return out


def proxy_versions():
    """The programs bench/proxy.sh runs, for bench.machine_info."""
    return {"nginx": bench._version(["nginx", "-v"]),
            "haproxy": bench._version(["haproxy", "-v"]),
            "wrk": bench._version(["wrk", "-v"])}


def read(path):
    try:
        return open(path).read().rstrip("\n")
    except OSError:
        return None


def cmd_report(a):
    servers = a.servers.split()
    res = derive(bench.load_results(a.results, a.disturbed), a.backend_cpu)
    status = json.loads(a.status)
    info = bench.machine_info(a, proxy_versions())
    header, rows, notes = build_table(res, status, servers, a.backend_cpu)
    goals = goal_lines(res, servers)
    hs = hints(res, servers, a.busy_before, a.backend_cpu)
    notes[:0] = reversed(bench.died_notes(res, SHORT))
    print()
    print(bench.render_text(header, rows))
    for n in notes:
        print("  note: " + n)
    for h in hs:
        print("  hint: " + h)
    for g in goals:
        print("  goal: " + g)

    pin_b = ("CPU 1, with wrk" if a.backend_cpu == "1" else f"CPU {a.backend_cpu}")
    md = [f"# eddy proxy benchmark — {info['date']}", "",
          "Generated by `bench/proxy.sh`. Each proxy runs one worker pinned to CPU 0 "
          f"(`taskset -c 0`); wrk (one thread) runs on CPU 1; the backend, the same nginx for "
          f"every proxy, on {pin_b}. Every proxy keeps up to {a.upstream_keepalive} idle HTTP/1.1 "
          f"connections to the backend (as many as wrk opens in (p1)), access logs off. Proxy CPU µs/req is the proxy's own utime+stime (all "
          "its processes and threads) over the measured run divided by the requests completed; "
          "backend CPU µs/req the same for the backend. Ratios: eddy ÷ best peer; ↑ higher is "
          "better, ↓ lower is better. `(!)` marks a figure with errors (invalid). "
          + (f"Each figure is the best of {a.repeat} rounds. " if a.repeat > 1 else "")
          + f"A run during which other processes used more than {a.disturbed:.0%} of a CPU is "
            f"repeated while the time budget allows, and the least disturbed attempts count. "
            f"The 'backend alone' column is wrk straight to the backend, pinned the same way: "
            f"what CPU 1 (wrk + backend) can deliver without a proxy.", "",
          bench.render_md(header, rows), ""]
    if goals:
        md += ["Goals (eddy against the best peer):", ""] + [f"- {g}" for g in goals] + [""]
    if notes or hs:
        md += ["Notes:", ""] + [f"- {n}" for n in notes + hs] + [""]
    md += bench.machine_md(info)
    md += ["", "## Scenarios", "",
           f"- (p1) `wrk -t1 -c64 -d{a.duration}s` GET /index.html (100 bytes) through the "
           f"proxy, after a {a.warmup} s warm-up; keep-alive on both sides.",
           f"- (p2) `wrk -t1 -c16 -d{a.duration}s` GET /1m.bin (1 MiB of random bytes); MB/s "
           f"= 10^6 bytes/s as received by wrk; a run whose responses average under 1 MiB is "
           f"invalid.",
           "- Before the proxies start, both files are fetched through each one and compared "
           "byte for byte (also pipelined ×16, and `Connection: close`, which must close).",
           "- backend connections opened: connections the backend accepted during the measured "
           "run (its stub_status); a proxy that keeps and reuses its connections opens none.",
           "", "## Configurations", "",
           "eddy:", "", "    " + a.eddy_cmd, ""]
    for title, path in (("eddy's configuration file", "eddy-conf/eddy.yaml"),
                        ("nginx as the proxy", "nginx/nginx.conf"),
                        ("HAProxy", "haproxy/haproxy.cfg"),
                        ("the backend (nginx)", "backend/nginx.conf")):
        text = read(os.path.join(a.workdir, path))
        if text:
            md += [f"{title} (`{path}` in the work dir; paths there are the temp dir's):", "",
                   "```", text, "```", ""]
    md += ["## Caveats", "",
           "- Loopback on a 2-CPU VM: kernel CPU per request is partly a property of the "
           "pairing (cross-CPU wake-ups are charged to whichever side sends); the user-space "
           "row is less affected.",
           "- When CPU 1 (wrk + backend) is the limit, req/s compares CPU 1, not the proxies: "
           "compare proxy CPU µs/req.",
           "- Figures move by 10–30% between runs on a shared VM; use REPEAT=2 or more before "
           "reading much into a gap below that.", ""]
    bench.write_report(a, "proxy-", md, info, status,
                       [dict(r, key=list(k)) for k, r in res.items()],
                       ("eddy", "nginx", "haproxy", "wrk"))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("report")
    bench.add_report_args(p)
    p.add_argument("--servers", default="eddy nginx haproxy")
    p.add_argument("--eddy-cmd", default="")
    p.add_argument("--backend-cpu", default="1")
    p.add_argument("--upstream-keepalive", default="64")
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    sys.exit(a.fn(a) or 0)


if __name__ == "__main__":
    main()
