#!/usr/bin/env bash
# eddy's reverse proxy against nginx (proxy_pass, upstream keepalive) and
# HAProxy, in front of the same backend.
#
#   bench/proxy.sh          (no arguments; about 2 minutes, REPEAT=2 about 4)
#
# Installs what is missing (Debian packages nginx-light haproxy wrk
# util-linux; as root, else prints the command and exits 1), builds
# build/eddy if it is missing, and runs every server from a private temp dir
# on free 127.0.0.1 ports (never the system's nginx or haproxy services).
#
# The backend, the same for every proxy: a second nginx (one worker,
# sendfile, open_file_cache, unlimited keep-alive, access log off) serving
# /index.html (100 bytes) and /1m.bin (1 MiB), pinned to BACKEND_CPU (1, with
# the load generator; 0 puts it beside the proxy).  It is measured alone
# first, wrk straight to it pinned as in the proxy runs: the rate CPU 1
# (wrk + backend) can deliver, which bounds every proxy's rate.
# Each proxy then runs one worker pinned to CPU 0, wrk on CPU 1:
#   (p1) wrk -t1 -c64 GET /index.html over keep-alive (client and backend)
#   (p2) wrk -t1 -c16 GET /1m.bin (a run averaging under 1 MiB is invalid)
# and the report gives req/s, MB/s and the proxy's CPU µs per request (its
# utime+stime over the run from /proc, all its processes and threads, over
# the requests completed), the backend's CPU per request and the connections
# the backend accepted meanwhile, and eddy's ratios to the best peer (goals:
# small-response CPU ≤ 0.8×, 1 MiB MB/s ≥ 1.0×).  Prints the table and
# writes bench/results/proxy-latest.{md,json} plus copies named by date.
#
# Optional environment (as bench/run.sh's):
#   DURATION=10  WARMUP=2  REPEAT=1 (rounds; each figure the best of them)
#   SERVERS="eddy nginx haproxy"   EDDY=build/eddy   OUTDIR=bench/results
#   KEEP_WORK=1  keep the temp dir (configs, logs, wrk output)
#   WAIT_QUIET=0 seconds to wait for other processes to drop below 10% of a CPU
#   RETRIES=2 DISTURBED=0.2 TIME_BUDGET=(planned runs × 1.5 + 60 s): a run
#                during which other processes used more than DISTURBED of a
#                CPU is repeated up to RETRIES times within TIME_BUDGET
#   BACKEND_CPU=1  the CPU the backend is pinned to
#   UPSTREAM_KEEPALIVE=64  idle backend connections each proxy keeps: nginx
#                `keepalive`, HAProxy `pool-max-conn`, eddy's `keepalive`
#                (32, eddy's and the issue's figure, runs eddy with flags
#                alone; any other through a configuration file).  64, as many
#                as wrk's connections: with 32, nginx and HAProxy closed and
#                reopened a backend connection for about one small request
#                in three, which measures connection churn, not keep-alive
#   PYTHON=/usr/bin/python3
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LIB=$HERE/lib
PY=${PYTHON:-/usr/bin/python3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
SERVERS=${SERVERS:-"eddy nginx haproxy"}
EDDY=${EDDY:-$REPO/build/eddy}
OUTDIR=${OUTDIR:-$HERE/results}
REPEAT=${REPEAT:-1}
RETRIES=${RETRIES:-2}
DISTURBED=${DISTURBED:-0.2}
BACKEND_CPU=${BACKEND_CPU:-1}
UPSTREAM_KEEPALIVE=${UPSTREAM_KEEPALIVE:-64}
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf '%s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. deps --
declare -A PKG=([nginx]=nginx-light [haproxy]=haproxy [wrk]=wrk)
missing=()
for c in nginx haproxy wrk; do
    command -v "$c" >/dev/null 2>&1 || missing+=("${PKG[$c]}")
done
command -v taskset >/dev/null 2>&1 && command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        say "bench: missing Debian packages: ${missing[*]}" >&2
        say "bench: run: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    say "bench: installing ${missing[*]}"
    # Installing may start system services (nginx on port 80, haproxy): this
    # script never talks to them nor stops them; it runs its own instances.
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
        apt-get update && apt-get install -y --no-install-recommends "${missing[@]}" \
            || die "apt-get install failed"
    fi
fi
for c in nginx wrk taskset prlimit; do
    command -v "$c" >/dev/null 2>&1 || die "$c is still missing"
done
[ -x "$PY" ] || die "no $PY (set PYTHON=)"

if [ ! -x "$EDDY" ]; then
    say "bench: building eddy"
    make -C "$REPO" all >/dev/null || die "make all failed"
fi
[ -x "$EDDY" ] || die "no eddy binary at $EDDY"

NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then
    PIN_PROXY="taskset -c 0"; PIN_CLIENT="taskset -c 1"; PIN_BACKEND="taskset -c $BACKEND_CPU"
else
    PIN_PROXY=""; PIN_CLIENT=""; PIN_BACKEND=""
    say "bench: only $NCPU CPU: running unpinned, proxy, backend and client share it"
fi

NOFILE=65536
if ! prlimit --nofile=$NOFILE:$NOFILE true 2>/dev/null; then
    NOFILE=$(ulimit -Hn)
    [ "$NOFILE" = unlimited ] && NOFILE=65536
fi

# ------------------------------------------------------------ temp dir -----
SPID=""   # the running proxy's PID (one at a time)
BPID=""   # the backend's
stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}
stop_server() { local p=$SPID; SPID=""; stop_pid "$p"; }
cleanup() {
    trap - EXIT INT TERM
    stop_server
    local b=$BPID; BPID=""; stop_pid "$b"
    if [ "${KEEP_WORK:-0}" = 1 ]; then say "bench: kept $WORK"; else rm -rf "$WORK"; fi
}
WORK=$(mktemp -d /tmp/eddy-proxy-bench.XXXXXX) || die "mktemp failed"
trap cleanup EXIT
trap 'say "bench: interrupted"; exit 130' INT TERM
chmod 755 "$WORK"   # nginx's worker runs as nobody and must read the docroot
# A private copy of eddy: a rebuild during the run changes nothing measured.
cp "$EDDY" "$WORK/eddy" || die "cannot copy $EDDY"
EDDY_SRC=$EDDY
EDDY=$WORK/eddy
# (the help read whole first: grep -q leaving early would fail the pipe)
EDDY_HELP=$("$EDDY" --help 2>&1)
grep -q -- '--proxy' <<<"$EDDY_HELP" || die "$EDDY_SRC has no --proxy flag"
EDDY_W=""
grep -q -- '--workers' <<<"$EDDY_HELP" && EDDY_W="--workers 1"
EDDY_BUILT=$(date -r "$EDDY_SRC" '+%Y-%m-%d %H:%M:%S')
EDDY_REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo "?")
RESULTS=$WORK/results.jsonl
CLIENT_LOG=$WORK/clients.log
: >"$RESULTS"
declare -A STATUS DEAD

# ------------------------------------------------------------- docroot -----
ROOT=$WORK/root
mkdir -p "$ROOT"
"$PY" - "$ROOT/index.html" <<'EOF' || die "cannot write index.html"
import sys
head, tail = "<!DOCTYPE html><title>p</title><p>", "</p>\n"
body = head + "x" * (100 - len(head) - len(tail)) + tail
assert len(body.encode()) == 100
open(sys.argv[1], "w").write(body)
EOF
head -c 1048576 /dev/urandom >"$ROOT/1m.bin"
chmod 644 "$ROOT"/*
chmod 755 "$ROOT"

# ------------------------------------------------------------- backend -----
# Shared temp paths for the nginx instances (neither writes to them here).
nginx_temp_paths() {  # DIR
    cat <<EOF
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
EOF
}
start_backend() {
    local d=$WORK/backend
    mkdir -p "$d/logs" "$d/tmp"
    BPORT=$("$PY" "$LIB/bench.py" freeport)
    BSTATUS=$("$PY" "$LIB/bench.py" freeport)
    cat >"$d/nginx.conf" <<EOF
# The backend: serves the files; stub_status (on its own port) counts the
# connections the proxies open to it.
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections $((NOFILE - 100)); }
http {
    types { text/html html; application/octet-stream bin; }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    gzip off;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 1s;
    open_file_cache_min_uses 1;
    open_file_cache_errors on;
    keepalive_timeout 300s;
    keepalive_requests 1000000000;
$(nginx_temp_paths "$d")
    server {
        listen 127.0.0.1:$BPORT;
        root $ROOT;
    }
    server {
        listen 127.0.0.1:$BSTATUS;
        location / { stub_status; }
    }
}
EOF
    prlimit --nofile=$NOFILE:$NOFILE $PIN_BACKEND nginx -p "$d" -c "$d/nginx.conf" \
        -e "$d/logs/error.log" >"$WORK/backend.out" 2>&1 </dev/null &
    BPID=$!
    if ! "$PY" "$LIB/bench.py" wait-ready "$BPORT" "$BPID" 10 2>>"$WORK/backend.out" ||
       ! "$PY" "$LIB/bench.py" check "$BPORT" "$ROOT" 2>>"$WORK/backend.out"; then
        cat "$WORK/backend.out" "$d/logs/error.log" >&2
        die "the backend nginx did not come up or answered wrongly"
    fi
}

# -------------------------------------------------------------- proxies ----
# Each sets CMD; PORT and BPORT are chosen before.  Every proxy: one worker,
# HTTP/1.1 keep-alive to the backend with UPSTREAM_KEEPALIVE idle connections
# kept, access log off, the client's Host passed on, X-Forwarded-For, -Proto
# and -Host added (eddy's default), no limit on requests per connection,
# responses streamed through buffers of eddy's size (64 KiB reads), never
# spooled to disk.
conf_eddy() {
    if [ "$UPSTREAM_KEEPALIVE" = 32 ]; then   # eddy's default
        CMD=("$EDDY" --listen "127.0.0.1:$PORT" --proxy "/=http://127.0.0.1:$BPORT"
             --keepalive-timeout 300 $EDDY_W)
        return
    fi
    # the pool's size is a key of the configuration file only
    mkdir -p "$WORK/eddy-conf"
    cat >"$WORK/eddy-conf/eddy.yaml" <<EOF
listen: ["127.0.0.1:$PORT"]
keepalive-timeout: 300
sites:
  - default: true
    paths:
      - path: /
        proxy:
          to: http://127.0.0.1:$BPORT
          keepalive: $UPSTREAM_KEEPALIVE
EOF
    CMD=("$EDDY" -c "$WORK/eddy-conf/eddy.yaml" $EDDY_W)
}
conf_nginx() {
    local d=$WORK/nginx
    mkdir -p "$d/logs" "$d/tmp"
    cat >"$d/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections $((NOFILE - 100)); }
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000000000;
$(nginx_temp_paths "$d")
    upstream backend {
        server 127.0.0.1:$BPORT;
        keepalive $UPSTREAM_KEEPALIVE;
        keepalive_requests 1000000000;
    }
    server {
        listen 127.0.0.1:$PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            # eddy's budget for a response in flight: it reads a backend
            # 64 KiB at a time and holds up to 64 KiB for a slow client,
            # never spooling to disk.  nginx's defaults (4 KiB buffers,
            # spooling past them) cost it 3x the CPU per 1 MiB response.
            proxy_buffer_size 16k;
            proxy_buffers 8 16k;
            proxy_max_temp_file_size 0;
        }
    }
}
EOF
    CMD=(nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log")
}
conf_haproxy() {
    local d=$WORK/haproxy
    mkdir -p "$d"
    # maxconn: HAProxy wants two descriptors per connection within the limit.
    cat >"$d/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $(((NOFILE - 200) / 2))
    # eddy reads a backend 64 KiB at a time: the same buffers here (the
    # default 16 KiB costs HAProxy about 2x the CPU per 1 MiB response)
    tune.bufsize 65536
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 60s
    timeout http-keep-alive 300s
frontend fe
    bind 127.0.0.1:$PORT
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    default_backend be
backend be
    server b1 127.0.0.1:$BPORT pool-max-conn $UPSTREAM_KEEPALIVE
EOF
    # -db: foreground, one process (no master-worker)
    CMD=(haproxy -db -f "$d/haproxy.cfg")
}

start_server() {  # NAME → SPID, PORT; 1 (reason in STATUS[NAME]) on failure
    local name=$1 was=${STATUS[$1]:-}
    if [ "$name" != eddy ] && ! command -v "$name" >/dev/null 2>&1; then
        STATUS[$name]="not installed"; return 1
    fi
    PORT=$("$PY" "$LIB/bench.py" freeport)
    "conf_$name"
    local out=$WORK/$name.out
    prlimit --nofile=$NOFILE:$NOFILE $PIN_PROXY "${CMD[@]}" >"$out" 2>&1 </dev/null &
    SPID=$!
    if ! "$PY" "$LIB/bench.py" wait-ready "$PORT" "$SPID" 10 2>>"$out"; then
        STATUS[$name]="failed to start"
        if [ "$was" = ok ]; then
            STATUS[$name]=ok; DEAD[$name]=1
            printf '{"server": "%s", "scenario": "_died", "during": "start"}\n' "$name" >>"$RESULTS"
        fi
        say "  $name failed to start: ${CMD[*]}"; tail -n 5 "$out" "$WORK/$name"/logs/*.log 2>/dev/null | sed 's/^/    /'
        stop_server; return 1
    fi
    # both files byte for byte through the proxy, keep-alive, pipelining,
    # Connection: close
    if ! "$PY" "$LIB/bench.py" check "$PORT" "$ROOT" 2>>"$out"; then
        STATUS[$name]="wrong answers"
        say "  $name answered wrongly:"; grep '^check:' "$out" | sed 's/^/    /'
        stop_server; return 1
    fi
    STATUS[$name]=ok
    return 0
}

PLANNED_RUNS=0
RUNS_DONE=0
measure() {  # NAME SCENARIO PID BACKEND(0/1) WRK-ARGS... (URL last)
    local name=$1 scen=$2 pid=$3 withb=$4; shift 4
    local -a extra=()
    [ -n "${MIN_BYTES:-}" ] && extra+=(--min-bytes "$MIN_BYTES")
    [ "$withb" = 1 ] && extra+=(--backend-pid "$BPID" --backend-status "$BSTATUS")
    $PIN_CLIENT wrk -d"${WARMUP}s" "$@" >>"$CLIENT_LOG" 2>&1
    local attempt rc
    for attempt in $(seq $((1 + RETRIES))); do
        "$PY" "$LIB/bench.py" measure --out "$RESULTS" --log "$CLIENT_LOG" --server "$name" \
            --scenario "$scen" --pid "$pid" --tool wrk --disturbed "$DISTURBED" "${extra[@]}" \
            -- $PIN_CLIENT wrk -d"${DURATION}s" -s "$LIB/wrk_report.lua" "$@"
        rc=$?
        [ $rc -eq 3 ] || break
        local left=$(( (PLANNED_RUNS - RUNS_DONE) * (DURATION + WARMUP + 1) ))
        [ $((SECONDS + DURATION + 1 + left)) -le "$TIME_BUDGET" ] || break
        kill -0 "$pid" 2>/dev/null || break
        say "    (disturbed by other processes: again)"
    done
    RUNS_DONE=$((RUNS_DONE + 1))
    return 0
}

run_scenarios() {  # NAME PID BACKEND(0/1) PORT
    local name=$1 pid=$2 withb=$3 url=http://127.0.0.1:$4 scen
    for scen in p1 p2; do
        case $scen in
        p1) measure "$name" p1 "$pid" "$withb" -t1 -c64 "$url/index.html" ;;
        p2) MIN_BYTES=1048576 measure "$name" p2 "$pid" "$withb" -t1 -c16 "$url/1m.bin" ;;
        esac
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
    done
    return 0
}

bench_proxy() {  # NAME ROUND
    local name=$1 round=$2
    say "== $name$( ((REPEAT > 1)) && echo " (round $round of $REPEAT)")"
    start_server "$name" || return 0
    if ! run_scenarios "$name" "$SPID" 1 "$PORT"; then
        say "  $name DIED: its remaining scenarios are skipped"
        tail -n 20 "$WORK/$name.out" "$WORK/$name"/logs/*.log 2>/dev/null | sed 's/^/    /'
        printf '{"server": "%s", "scenario": "_died", "during": "run"}\n' "$name" >>"$RESULTS"
        wait "$SPID" 2>/dev/null; SPID=""
        DEAD[$name]=1
        return 0
    fi
    stop_server
}

eddy_cmd_desc() {  # how eddy ran, for the report
    if [ "$UPSTREAM_KEEPALIVE" = 32 ]; then
        echo "eddy --listen 127.0.0.1:PORT --proxy /=http://127.0.0.1:BACKEND --keepalive-timeout 300 $EDDY_W"
    else
        echo "eddy -c eddy.yaml $EDDY_W   # eddy.yaml below"
    fi
}

# ------------------------------------------------------------------ run ----
say "bench: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) x$NCPU, kernel $(uname -r)"
say "bench: proxies on CPU 0, wrk on CPU 1, backend on CPU $BACKEND_CPU; ${DURATION}s runs after ${WARMUP}s warm-ups, workdir $WORK"
NSERV=$(wc -w <<<"$SERVERS")
PLANNED_RUNS=$(( REPEAT * (NSERV + 1) * 2 ))
TIME_BUDGET=${TIME_BUDGET:-$(( PLANNED_RUNS * (DURATION + WARMUP + 2) * 3 / 2 + 60 ))}
BUSY=$("$PY" "$LIB/bench.py" busy 1 2>/dev/null || echo 0)
waited=0
while [ "${BUSY:-0}" -gt 10 ] && [ "$waited" -lt "${WAIT_QUIET:-0}" ]; do
    [ "$waited" = 0 ] && say "bench: other processes use ${BUSY}% of a CPU; waiting up to ${WAIT_QUIET}s for quiet"
    sleep 4; waited=$((waited + 5))
    BUSY=$("$PY" "$LIB/bench.py" busy 1 2>/dev/null || echo 0)
done
if [ "${BUSY:-0}" -gt 10 ]; then
    say "bench: WARNING: other processes are using ${BUSY}% of a CPU right now; figures will be disturbed"
fi

start_backend
STATUS[backend]=ok
for round in $(seq "$REPEAT"); do
    # the backend alone: wrk straight to it, pinned as in the proxy runs
    say "== backend alone (nginx on CPU $BACKEND_CPU, no proxy)$( ((REPEAT > 1)) && echo " (round $round of $REPEAT)")"
    run_scenarios backend "$BPID" 0 "$BPORT" || die "the backend died"
    for s in $SERVERS; do
        if [ -z "${DEAD[$s]:-}" ] && { [ -z "${STATUS[$s]:-}" ] || [ "${STATUS[$s]}" = ok ]; }; then
            bench_proxy "$s" "$round"
        fi
    done
done

status_json=$(for k in "${!STATUS[@]}"; do printf '"%s": "%s",' "$k" "${STATUS[$k]}"; done)
"$PY" "$LIB/proxy.py" report --results "$RESULTS" --status "{${status_json%,}}" \
    --outdir "$OUTDIR" --workdir "$WORK" --eddy "$EDDY" --servers "$SERVERS" \
    --eddy-desc "$EDDY_SRC, built $EDDY_BUILT; work tree at git $EDDY_REV" \
    --eddy-cmd "$(eddy_cmd_desc)" \
    --duration "$DURATION" --warmup "$WARMUP" --busy-before "$BUSY" \
    --disturbed "$DISTURBED" --repeat "$REPEAT" --backend-cpu "$BACKEND_CPU" \
    --upstream-keepalive "$UPSTREAM_KEEPALIVE"
