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

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
SERVERS=${SERVERS:-"eddy nginx haproxy"}
BACKEND_CPU=${BACKEND_CPU:-1}
UPSTREAM_KEEPALIVE=${UPSTREAM_KEEPALIVE:-64}

# ---------------------------------------------------------------- 1. deps --
want_commands nginx nginx-light haproxy haproxy wrk wrk taskset util-linux prlimit util-linux
install_missing
require_commands nginx wrk taskset prlimit
build_eddy
pin_cpus "proxy, backend and client"   # the proxy is PIN_SERVER's
PIN_BACKEND=""
[ -n "$PIN_CLIENT" ] && PIN_BACKEND="taskset -c $BACKEND_CPU"
find_nofile

# ------------------------------------------------------------ temp dir -----
BPID=""   # the backend's PID (SPID: the running proxy's)
stop_others() { local b=$BPID; BPID=""; stop_pid "$b"; }   # at exit (cleanup)
make_workdir eddy-proxy-bench
eddy_has --proxy || die "$EDDY_SRC has no --proxy flag"
make_docroot 100 '<!DOCTYPE html><title>p</title><p>' $'</p>\n'

# ------------------------------------------------------------- backend -----
start_backend() {
    local d=$WORK/backend
    mkdir -p "$d/logs" "$d/tmp"
    BPORT=$(bench_py freeport)
    BSTATUS=$(bench_py freeport)
    cat >"$d/nginx.conf" <<EOF
# The backend: serves the files; stub_status (on its own port) counts the
# connections the proxies open to it.
$(nginx_main "$d")
http {
$(nginx_files)
$(nginx_keepalive "$d")
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
    run_limited "$PIN_BACKEND" "$WORK/backend.out" nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log"
    BPID=$LAST_PID
    if ! bench_py wait-ready "$BPORT" "$BPID" 10 2>>"$WORK/backend.out" ||
       ! bench_py check "$BPORT" "$ROOT" 2>>"$WORK/backend.out"; then
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
# shellcheck disable=SC2206   # EDDY_W: flags, split on purpose
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
$(nginx_main "$d")
http {
    access_log off;
$(nginx_keepalive "$d")
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

# shellcheck disable=SC2086   # PIN_CLIENT: a command prefix, split on purpose
measure() {  # NAME SCENARIO PID BACKEND(0/1) WRK-ARGS... (URL last)
    local name=$1 scen=$2 pid=$3 withb=$4; shift 4
    local -a backend=()
    [ "$withb" = 1 ] && backend=(--backend-pid "$BPID" --backend-status "$BSTATUS")
    $PIN_CLIENT wrk -d"${WARMUP}s" "$@" >>"$CLIENT_LOG" 2>&1
    measure_retrying "$pid" --server "$name" --scenario "$scen" --pid "$pid" --tool wrk \
        "${backend[@]}" -- $PIN_CLIENT wrk -d"${DURATION}s" -s "$LIB/wrk_report.lua" "$@"
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
    say "== $name$(round_note "$round")"
    start_server "$name" "$PIN_SERVER" || return 0
    if ! run_scenarios "$name" "$SPID" 1 "$PORT"; then
        server_died "$name" "$name" run 20 "$name DIED: its remaining scenarios are skipped"
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
say_machine
say "bench: proxies on CPU 0, wrk on CPU 1, backend on CPU $BACKEND_CPU; ${DURATION}s runs after ${WARMUP}s warm-ups, workdir $WORK"
NSERV=$(wc -w <<<"$SERVERS")
PLANNED_RUNS=$(( REPEAT * (NSERV + 1) * 2 ))
TIME_BUDGET=${TIME_BUDGET:-$(( PLANNED_RUNS * (DURATION + WARMUP + 2) * 3 / 2 + 60 ))}
wait_for_quiet

start_backend
STATUS[backend]=ok
for round in $(seq "$REPEAT"); do
    # the backend alone: wrk straight to it, pinned as in the proxy runs
    say "== backend alone (nginx on CPU $BACKEND_CPU, no proxy)$(round_note "$round")"
    run_scenarios backend "$BPID" 0 "$BPORT" || die "the backend died"
    for s in $SERVERS; do
        if may_run "$s"; then bench_proxy "$s" "$round"; fi
    done
done

report proxy.py --servers "$SERVERS" --eddy-cmd "$(eddy_cmd_desc)" \
    --backend-cpu "$BACKEND_CPU" --upstream-keepalive "$UPSTREAM_KEEPALIVE"
