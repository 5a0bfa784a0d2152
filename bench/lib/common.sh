# shellcheck shell=bash disable=SC2034   # variables set here are the scripts'
# What bench/run.sh and bench/proxy.sh share, sourced by both right after
# their `set -u -o pipefail`, so that each thing is done one way: the
# optional environment both read, the package check and install, building
# eddy, CPU pinning, the descriptor limit, the temp dir and its cleanup, the
# docroot, starting, checking and stopping the server under test, measured
# runs and their retries, waiting for a quiet machine, and the report's
# arguments.
#
# A script sets SERVERS and its own settings itself, defines conf_NAME for
# each server it runs (sets CMD, the command line, for PORT) and calls these
# in order: want_commands/want_files, install_missing, require_commands,
# build_eddy, pin_cpus, find_nofile, make_workdir, make_docroot.

# ------------------------------------------------------ environment -----
LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)   # bench/lib
HERE=$(cd "$LIB/.." && pwd)                         # bench
REPO=$(cd "$HERE/.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
EDDY=${EDDY:-$REPO/build/eddy}
OUTDIR=${OUTDIR:-$HERE/results}
REPEAT=${REPEAT:-1}
RETRIES=${RETRIES:-2}
DISTURBED=${DISTURBED:-0.2}
# nginx, haproxy, taskset and prlimit live in sbin, often not on a user's PATH
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf '%s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# bench.py's subcommands (freeport, wait-ready, check, measure, busy, ...)
bench_py() { "$PY" "$LIB/bench.py" "$@"; }

# --------------------------------------------------------- packages -----
# The Debian packages to install, each once, in the order found missing.
MISSING=()
want_package() {  # PACKAGE
    local p
    for p in "${MISSING[@]}"; do [ "$p" = "$1" ] && return 0; done
    MISSING+=("$1")
}
want_commands() {  # COMMAND PACKAGE ...: PACKAGE for each COMMAND not on PATH
    while [ $# -ge 2 ]; do
        command -v "$1" >/dev/null 2>&1 || want_package "$2"
        shift 2
    done
}
want_files() {  # FILE PACKAGE ...: PACKAGE for each FILE that does not exist
    while [ $# -ge 2 ]; do
        [ -e "$1" ] || want_package "$2"
        shift 2
    done
}
# As root, apt-get install MISSING; otherwise print the command and exit 1
# (a benchmark must not ask for a password half-way).
install_missing() {
    ((${#MISSING[@]})) || return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "bench: missing Debian packages: ${MISSING[*]}" >&2
        say "bench: run: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${MISSING[*]}" >&2
        exit 1
    fi
    say "bench: installing ${MISSING[*]}"
    # Installing may start system services (nginx on port 80, haproxy): the
    # scripts never talk to them nor stop them; they run their own instances.
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${MISSING[@]}"; then
        # a stale package list: update it once and try again
        if ! { apt-get update && apt-get install -y --no-install-recommends "${MISSING[@]}"; }; then
            die "apt-get install failed"
        fi
    fi
}
require_commands() {  # COMMAND...: each on PATH now (after installing), and PY
    local c
    for c; do
        command -v "$c" >/dev/null 2>&1 || die "$c is still missing"
    done
    [ -x "$PY" ] || die "no $PY (set PYTHON=)"
}

build_eddy() {  # EDDY missing: make it (make all); die if there is still none
    if [ ! -x "$EDDY" ]; then
        say "bench: building eddy"
        make -C "$REPO" all >/dev/null || die "make all failed"
    fi
    [ -x "$EDDY" ] || die "no eddy binary at $EDDY"
}

# ----------------------------------------------------------- limits -----
# The server under test on CPU 0, the load generator on CPU 1 (PIN_SERVER,
# PIN_CLIENT: prefixes for a command line), so they do not take each
# other's CPU; with one CPU, nothing pinned.
pin_cpus() {  # WHO ("server and client"): the processes sharing one CPU, for the message
    NCPU=$(nproc)
    if [ "$NCPU" -ge 2 ]; then
        PIN_SERVER="taskset -c 0"; PIN_CLIENT="taskset -c 1"
    else
        PIN_SERVER=""; PIN_CLIENT=""
        say "bench: only $NCPU CPU: running unpinned, $1 share it"
    fi
}

# NOFILE: the highest descriptor limit we may give the servers: 65536, or
# the hard limit when raising it is not permitted (no CAP_SYS_RESOURCE).
find_nofile() {
    NOFILE=65536
    if ! prlimit --nofile=$NOFILE:$NOFILE true 2>/dev/null; then
        NOFILE=$(ulimit -Hn)
        [ "$NOFILE" = unlimited ] && NOFILE=65536
    fi
}

# ---------------------------------------------------------- temp dir -----
SPID=""      # the PID of the server under test (one at a time)
TLS_MODE=0   # 1 while a server is configured for HTTPS (bench/run.sh's TLS instances)
declare -A STATUS DEAD   # per server: "ok" or why not; set when it died

stop_pid() {  # PID: TERM, up to 5 s to exit, then KILL; reaped
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
# At exit: the server, what else the script started (its stop_others, when
# it defines one), then the temp dir unless KEEP_WORK=1.
cleanup() {
    trap - EXIT INT TERM
    stop_server
    if declare -F stop_others >/dev/null; then stop_others; fi
    if [ "${KEEP_WORK:-0}" = 1 ]; then say "bench: kept $WORK"; else rm -rf "$WORK"; fi
}

# make_workdir NAME: WORK=/tmp/NAME.XXXXXX (configs, logs, client output,
# RESULTS, the JSON lines of the runs) and a private copy of eddy in it, so
# that a rebuild of build/eddy during the run changes nothing measured nor
# what the report names; EDDY is then the copy, EDDY_SRC the original.
make_workdir() {
    WORK=$(mktemp -d "/tmp/$1.XXXXXX") || die "mktemp failed"
    trap cleanup EXIT
    trap 'say "bench: interrupted"; exit 130' INT TERM
    chmod 755 "$WORK"   # nginx's worker runs as nobody and must read the docroot
    cp "$EDDY" "$WORK/eddy" || die "cannot copy $EDDY"
    EDDY_SRC=$EDDY
    EDDY=$WORK/eddy
    # read whole first: grep -q leaving a pipe early would fail it (pipefail)
    EDDY_HELP=$("$EDDY" --help 2>&1)
    HAVE_WORKERS=0; EDDY_W=""
    if eddy_has --workers; then HAVE_WORKERS=1; EDDY_W="--workers 1"; fi
    EDDY_BUILT=$(date -r "$EDDY_SRC" '+%Y-%m-%d %H:%M:%S')
    EDDY_REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo "?")
    EDDY_DESC="$EDDY_SRC, built $EDDY_BUILT; work tree at git $EDDY_REV"
    RESULTS=$WORK/results.jsonl
    CLIENT_LOG=$WORK/clients.log
    : >"$RESULTS"
}
eddy_has() { grep -q -- "$1" <<<"$EDDY_HELP"; }   # FLAG: in eddy's --help

# make_docroot SIZE HEAD TAIL: ROOT=$WORK/root with index.html, SIZE bytes
# (HEAD, x's, TAIL), and 1m.bin, 1 MiB of random bytes; readable by all.
make_docroot() {
    ROOT=$WORK/root
    mkdir -p "$ROOT"
    "$PY" - "$ROOT/index.html" "$1" "$2" "$3" <<'EOF' || die "cannot write index.html"
import sys
path, size, head, tail = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
body = head + "x" * (size - len(head) - len(tail)) + tail
assert len(body.encode()) == size
open(path, "w").write(body)
EOF
    head -c 1048576 /dev/urandom >"$ROOT/1m.bin"
    chmod 644 "$ROOT"/*
    chmod 755 "$ROOT"
}

# ----------------------------------------------------------- nginx -------
# The parts of an nginx.conf the scripts' nginx instances have in common,
# for a config written with DIR as nginx's prefix: one worker in the
# foreground, descriptors for NOFILE connections; inside http, static
# files served as eddy serves them; keep-alive unlimited; temp paths in DIR
# (none is written to here).
nginx_main() {  # DIR
    cat <<EOF
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections $((NOFILE - 100)); }
EOF
}
# eddy keeps hot files open between requests and looks a path up again only
# after 1 s (src/files/file_cache.h); nginx does the same only with
# open_file_cache, so it gets one, else it pays open/fstat/close per request.
nginx_files() {
    cat <<EOF
    types { text/html html; application/octet-stream bin; }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    gzip off;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 1s;
    open_file_cache_min_uses 1;
    open_file_cache_errors on;
EOF
}
nginx_keepalive() {  # DIR
    cat <<EOF
    keepalive_timeout 300s;
    keepalive_requests 1000000000;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
EOF
}

# ---------------------------------------------------------- servers -----
# run_limited PIN OUT COMMAND...: COMMAND in the background, pinned by PIN
# (may be empty), under the descriptor limit NOFILE, stdout and stderr to
# OUT; LAST_PID is its PID (prlimit and taskset exec it: $! is the program).
run_limited() {
    local pin=$1 out=$2; shift 2
    # shellcheck disable=SC2086   # PIN is a command prefix: split on purpose
    prlimit --nofile="$NOFILE:$NOFILE" $pin "$@" >"$out" 2>&1 </dev/null &
    LAST_PID=$!
}

show_logs() {  # LINES KEY BASE: the end of KEY's output and of BASE's logs, indented
    tail -n "$1" "$WORK/$2.out" "$WORK/$3"/*.log "$WORK/$3"/logs/*.log 2>/dev/null | sed 's/^/    /'
}

record_death() {  # KEY DURING: a results line the report reads as "KEY DIED during DURING"
    printf '{"server": "%s", "scenario": "_died", "during": "%s"}\n' "$1" "$2" >>"$RESULTS"
}

# start_server NAME PIN "EXTRA" → SPID, PORT; returns 1 (with a reason in
# STATUS[NAME]) when it does not come up or answers wrongly.  NAME up to a
# dash (eddy-tls: eddy) is the program and picks conf_BASE, which is given
# EXTRA; with TLS_MODE=1 it is checked over HTTPS.
start_server() {
    local name=$1 pin=$2 extra=${3:-} base=${1%%-*}
    local was=${STATUS[$name]:-} tlsflag=()
    [ "$TLS_MODE" = 1 ] && tlsflag=(--tls)
    if [ "$base" != eddy ] && ! command -v "$base" >/dev/null 2>&1; then
        STATUS[$name]="not installed"; return 1
    fi
    PORT=$(bench_py freeport)
    "conf_$base" "$extra"
    local out=$WORK/$name.out
    run_limited "$pin" "$out" "${CMD[@]}"
    SPID=$LAST_PID
    if ! bench_py wait-ready "${tlsflag[@]}" "$PORT" "$SPID" 10 2>>"$out"; then
        STATUS[$name]="failed to start"
        if [ "$was" = ok ]; then   # it ran in an earlier round: keep those figures
            STATUS[$name]=ok; DEAD[$name]=1
            record_death "$name" start
        fi
        say "  $name failed to start: ${CMD[*]}"; show_logs 5 "$name" "$base"
        stop_server; return 1
    fi
    # both files byte for byte, keep-alive, pipelining, Connection: close
    if ! bench_py check "${tlsflag[@]}" "$PORT" "$ROOT" 2>>"$out"; then
        STATUS[$name]="wrong answers"
        say "  $name answered wrongly:"; grep '^check:' "$out" | sed 's/^/    /'
        stop_server; return 1
    fi
    STATUS[$name]=ok
    return 0
}

# The server died during a scenario: said, its logs shown, recorded, and
# the rest of that instance's scenarios skipped (DEAD).
server_died() {  # KEY BASE DURING LOG-LINES MESSAGE
    say "  $5"
    show_logs "$4" "$1" "$2"
    record_death "$1" "$3"
    wait "$SPID" 2>/dev/null; SPID=""
    DEAD[$1]=1
}

may_run() {  # KEY: not dead, and either not started yet or started fine before
    [ -z "${DEAD[$1]:-}" ] && { [ -z "${STATUS[$1]:-}" ] || [ "${STATUS[$1]}" = ok ]; }
}

round_note() {  # ROUND: " (round R of N)" when there are several
    if ((REPEAT > 1)); then echo " (round $1 of $REPEAT)"; fi
}

# ---------------------------------------------------------- measure -----
PLANNED_RUNS=0   # measured runs the script means to make (for TIME_BUDGET)
RUNS_DONE=0
# Seconds the script still needs beyond its planned runs; run.sh redefines
# it (servers still to start and check).
seconds_reserved() { echo 0; }

# measure_retrying PID MEASURE-ARGS... (-- COMMAND last): one measured run
# by bench.py measure (MEASURE-ARGS: --server, --scenario, --pid, --tool
# ...), into RESULTS and CLIENT_LOG.  It exits 3 when other processes took
# more than DISTURBED of a CPU meanwhile: the run is tried again, up to
# RETRIES times, while the planned runs left still fit in TIME_BUDGET and
# PID lives (the least disturbed attempt counts).  MIN_BYTES=N before the
# call: a run whose responses average fewer than N bytes is invalid.
measure_retrying() {
    local pid=$1 rc left; shift
    local -a min_bytes=()
    [ -n "${MIN_BYTES:-}" ] && min_bytes=(--min-bytes "$MIN_BYTES")
    for _ in $(seq $((1 + RETRIES))); do
        bench_py measure --out "$RESULTS" --log "$CLIENT_LOG" --disturbed "$DISTURBED" \
            "${min_bytes[@]}" "$@"
        rc=$?
        [ $rc -eq 3 ] || break
        left=$(( (PLANNED_RUNS - RUNS_DONE) * (DURATION + WARMUP + 1) + $(seconds_reserved) ))
        [ $((SECONDS + DURATION + 1 + left)) -le "$TIME_BUDGET" ] || break
        kill -0 "$pid" 2>/dev/null || break
        say "    (disturbed by other processes: again)"
    done
    RUNS_DONE=$((RUNS_DONE + 1))
    return 0
}

# ---------------------------------------------------------- machine -----
say_machine() { say "bench: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) x$NCPU, kernel $(uname -r)"; }

# BUSY: the % of a CPU other processes use now; other processes disturb
# the figures, so first wait up to WAIT_QUIET seconds for them to drop
# below 10%, then warn if they have not.
wait_for_quiet() {
    local waited=0
    BUSY=$(bench_py busy 1 2>/dev/null || echo 0)
    while [ "${BUSY:-0}" -gt 10 ] && [ "$waited" -lt "${WAIT_QUIET:-0}" ]; do
        [ "$waited" = 0 ] && say "bench: other processes use ${BUSY}% of a CPU; waiting up to ${WAIT_QUIET}s for quiet"
        sleep 4; waited=$((waited + 5))
        BUSY=$(bench_py busy 1 2>/dev/null || echo 0)
    done
    if [ "${BUSY:-0}" -gt 10 ]; then
        say "bench: WARNING: other processes are using ${BUSY}% of a CPU right now; figures will be disturbed"
    fi
}

# ----------------------------------------------------------- report -----
status_json() {  # STATUS as a JSON object
    local k s=""
    for k in "${!STATUS[@]}"; do s+=$(printf '"%s": "%s",' "$k" "${STATUS[$k]}"); done
    printf '{%s}' "${s%,}"
}
# report PROGRAM ARGS...: bench/lib/PROGRAM report, with the arguments every
# report takes (bench.py's add_report_args) and then ARGS.
report() {
    "$PY" "$LIB/$1" report --results "$RESULTS" --status "$(status_json)" \
        --outdir "$OUTDIR" --workdir "$WORK" --eddy "$EDDY" --eddy-desc "$EDDY_DESC" \
        --duration "$DURATION" --warmup "$WARMUP" --busy-before "$BUSY" \
        --disturbed "$DISTURBED" --repeat "$REPEAT" "${@:2}"
}
