#!/usr/bin/env bash
# eddy benchmark: eddy against nginx, h2o and lighttpd on the same machine.
#
#   bench/run.sh            (no arguments; about 12 minutes, at most ~15;
#                            TLS=0: about 6, at most ~9)
#
# Installs what is missing (Debian packages nginx-light h2o lighttpd wrk
# nghttp2-client gnuplot-nox; for TLS also lighttpd-mod-openssl openssl gcc
# libssl-dev; as root, else prints the command and exits 1),
# builds build/eddy if it is missing, runs every server from a private temp
# dir on free 127.0.0.1 ports (never the system's services), one server at a
# time pinned to CPU 0 with the load generator on CPU 1, prints the table and
# writes bench/results/latest.{md,svg,json} plus copies named by date.
#
# TLS scenarios (f)-(h): after its plain HTTP scenarios each server is started
# again, HTTPS only, with one ECDSA P-256 certificate made here (openssl CLI)
# and TLS 1.3, TLS_AES_128_GCM_SHA256, X25519 and one session ticket per
# handshake (each server's own directives where it has them, an OpenSSL
# config file where it has not; the clients offer nothing else). The plain
# HTTP instances and their configurations are the same as with TLS=0.
# (f) full handshakes: bench/lib/tlsload.c, built here with cc into the temp
# dir (wrk and h2load resume sessions, so they would not measure handshakes);
# (g) keep-alive and (h) 1 MiB: wrk over https.
# HTTP/2 scenarios: (i) small file and (j) 1 MiB over h2c (prior knowledge;
# nginx on a second port that speaks only h2c), (k) and (l) the same over
# https with ALPN h2 on the TLS instance, all with h2load -c64 -m32; (m)
# memory per idle h2c connection.
#
# Optional environment:
#   DURATION=10      seconds of each measured run        WARMUP=2  warm-up seconds
#   IDLE_CONNS=10000 connections for the idle-memory scenario
#   SERVERS="eddy nginx h2o lighttpd"   which servers to run
#   EDDY=build/eddy  the eddy binary    OUTDIR=bench/results
#   KEEP_WORK=1      keep the temp dir (configs, logs, client output)
#   WAIT_QUIET=0     seconds to wait, before starting, for other processes on
#                    the machine to drop below 10% of a CPU (they disturb it)
#   REPEAT=1         rounds over all servers; each figure is the best of them
#                    (REPEAT=2 DURATION=5 fits the same time and is steadier
#                    on a noisy machine)
#   RETRIES=2        a run during which other processes used more than
#   DISTURBED=0.2    DISTURBED of a CPU is repeated up to RETRIES times, as
#   TIME_BUDGET=900  long as the whole script still fits in TIME_BUDGET seconds
#                    (540 with TLS=0)
#   TLS=1            0 skips the TLS scenarios (f)-(h)
#   PYTHON=/usr/bin/python3
set -u -o pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
IDLE_CONNS=${IDLE_CONNS:-10000}
SERVERS=${SERVERS:-"eddy nginx h2o lighttpd"}
TLS=${TLS:-1}
[ "$TLS" = 0 ] || TLS=1
if [ "$TLS" = 1 ]; then TIME_BUDGET=${TIME_BUDGET:-900}; else TIME_BUDGET=${TIME_BUDGET:-540}; fi
# What every TLS scenario agrees on.
TLS_SUITE=TLS_AES_128_GCM_SHA256
TLS_GROUP=X25519

# ---------------------------------------------------------------- 1. deps --
want_commands nginx nginx-light h2o h2o lighttpd lighttpd wrk wrk h2load nghttp2-client \
              gnuplot gnuplot-nox taskset util-linux prlimit util-linux
if [ "$TLS" = 1 ]; then
    want_commands openssl openssl cc gcc
    # lighttpd's TLS is a module in a package of its own
    want_files /usr/include/openssl/ssl.h libssl-dev \
               /usr/lib/lighttpd/mod_openssl.so lighttpd-mod-openssl
fi
install_missing
require_commands wrk h2load taskset prlimit
build_eddy
pin_cpus "server and client"
find_nofile
if [ "$NOFILE" -lt $((IDLE_CONNS + 100)) ]; then
    say "bench: descriptor limit $NOFILE is too low for $IDLE_CONNS connections; using $((NOFILE - 200))"
    IDLE_CONNS=$((NOFILE - 200))
fi

# ------------------------------------------------------------ temp dir -----
make_workdir eddy-bench
make_docroot 190 $'<!DOCTYPE html>\n<html><head><title>eddy bench</title></head><body><p>' \
             $'</p></body></html>\n'

# ------------------------------------------------------------------ TLS ----
# One self-signed ECDSA P-256 certificate for every server; an OpenSSL config
# (PIN_CNF) that pins TLS 1.3, the suite, the group and one ticket for the
# programs that have no directive of their own for them (h2o, and wrk as a
# client); tlsload, the full-handshake client.
TLSDIR=$WORK/tls
PIN_CNF=$TLSDIR/pin.cnf
TLSLOAD=$WORK/tlsload
if [ "$TLS" = 1 ]; then
    mkdir -p "$TLSDIR"
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -days 7 \
            -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -keyout "$TLSDIR/key.pem" -out "$TLSDIR/cert.pem" >"$TLSDIR/openssl.log" 2>&1; then
        cat "$TLSDIR/openssl.log" >&2
        die "openssl could not make the certificate (TLS=0 skips the TLS scenarios)"
    fi
    cat >"$PIN_CNF" <<EOF
# Read through OPENSSL_CONF: applies to every SSL_CTX the program makes,
# before its own settings (which win where it has any).
openssl_conf = bench_init
[bench_init]
ssl_conf = bench_ssl
[bench_ssl]
system_default = bench_tls
[bench_tls]
MinProtocol = TLSv1.3
Ciphersuites = $TLS_SUITE
Groups = $TLS_GROUP
NumTickets = 1
EOF
    if ! cc -O2 -Wall -o "$TLSLOAD" "$LIB/tlsload.c" -lssl -lcrypto 2>"$TLSDIR/cc.log"; then
        cat "$TLSDIR/cc.log" >&2
        die "cannot build bench/lib/tlsload.c (TLS=0 skips the TLS scenarios)"
    fi
fi

# -------------------------------------------------------------- configs ----
# Each returns the command line in CMD; PORT is chosen before.
# shellcheck disable=SC2206   # $1: flags, split on purpose
conf_eddy() {  # $1 = extra flags (--workers N)
    if [ "$TLS_MODE" = 1 ]; then
        # eddy's own order already puts AES-128-GCM and X25519 first, one ticket
        CMD=("$EDDY" --listen-tls "127.0.0.1:$PORT" --cert "$TLSDIR/cert.pem"
             --key "$TLSDIR/key.pem" --tls-min 1.3 --root "$ROOT" --keepalive-timeout 300 $1)
        return
    fi
    CMD=("$EDDY" --listen "127.0.0.1:$PORT" --root "$ROOT" --keepalive-timeout 300 $1)
}
conf_nginx() {
    local d=$WORK/nginx conf=nginx.conf ssl="" tls="" h2c=""
    mkdir -p "$d/logs" "$d/tmp"
    if [ "$TLS_MODE" = 1 ]; then
        # tickets on is nginx's default (keys made at start, as eddy's are);
        # without kernel TLS its sendfile does not apply to TLS connections
        conf=nginx-tls.conf ssl=" ssl http2"
        tls="
        ssl_certificate $TLSDIR/cert.pem;
        ssl_certificate_key $TLSDIR/key.pem;
        ssl_protocols TLSv1.3;
        ssl_ecdh_curve $TLS_GROUP;
        ssl_conf_command Ciphersuites $TLS_SUITE;
        ssl_conf_command NumTickets 1;
        ssl_session_tickets on;"
    fi
    # nginx speaks h2c only on a port of its own (prior knowledge, no
    # HTTP/1.1): H2C_PORT, which bench_server uses for nginx.
    if [ "$TLS_MODE" = 0 ]; then
        H2C_PORT=$(bench_py freeport)
        h2c="
        listen 127.0.0.1:$H2C_PORT http2;"
    fi
    # open_file_cache as eddy's file cache: see nginx_files
    cat >"$d/$conf" <<EOF
$(nginx_main "$d")
http {
$(nginx_files)
$(nginx_keepalive "$d")
    server {
        listen 127.0.0.1:$PORT$ssl;$h2c
        root $ROOT;$tls
    }
}
EOF
    CMD=(nginx -p "$d" -c "$d/$conf" -e "$d/logs/error.log")
}
conf_h2o() {
    local d=$WORK/h2o conf=h2o.conf
    mkdir -p "$d"
    [ "$TLS_MODE" = 1 ] && conf=h2o-tls.conf
    {
        # As root h2o drops to "nobody" unless told; stay as we are so it can
        # write its pid file in our temp dir.
        [ "$(id -u)" -eq 0 ] && echo "user: $(id -un)"
        cat <<EOF
listen:
  host: 127.0.0.1
  port: $PORT
EOF
        # h2o 2.2 has no directive for TLS 1.3 suites, groups or the number
        # of tickets: those come from PIN_CNF (OPENSSL_CONF, below).
        # neverbleed OFF: its private-key process would add a round trip
        # per handshake that the other servers do not make; no OCSP fetcher.
        [ "$TLS_MODE" = 1 ] && cat <<EOF
  ssl:
    certificate-file: $TLSDIR/cert.pem
    key-file: $TLSDIR/key.pem
    minimum-version: TLSv1.3
    cipher-preference: server
    neverbleed: OFF
    ocsp-update-interval: 0
ssl-session-resumption:
  mode: ticket
EOF
        cat <<EOF
num-threads: 1
max-connections: $((NOFILE - 100))
http1-request-timeout: 300
pid-file: $d/h2o.pid
error-log: $d/error.log
file.mime.settypes:
  text/html: .html
  application/octet-stream: .bin
hosts:
  default:
    paths:
      /:
        file.dir: $ROOT
EOF
    } >"$d/$conf"
    CMD=(h2o -m worker -c "$d/$conf")
    [ "$TLS_MODE" = 1 ] && CMD=(env "OPENSSL_CONF=$PIN_CNF" "${CMD[@]}")
    return 0
}
conf_lighttpd() {
    local d=$WORK/lighttpd conf=lighttpd.conf
    mkdir -p "$d"
    [ "$TLS_MODE" = 1 ] && conf=lighttpd-tls.conf
    # max-keep-alive-requests: 0 would DISABLE keep-alive (lighttpd closes
    # when request_count > the limit); 65535 is the largest it accepts.
    cat >"$d/$conf" <<EOF
server.bind = "127.0.0.1"
server.port = $PORT
server.document-root = "$ROOT"
server.pid-file = "$d/lighttpd.pid"
server.errorlog = "$d/error.log"
server.max-worker = 0
server.max-fds = $NOFILE
server.max-connections = $((NOFILE / 2))
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 300
server.network-backend = "sendfile"
mimetype.assign = ( ".html" => "text/html", ".bin" => "application/octet-stream" )
EOF
    # Tickets are lighttpd's default (keys in memory, rotated); read-ahead as
    # eddy reads (one socket read per batch of records).
    [ "$TLS_MODE" = 1 ] && cat >>"$d/$conf" <<EOF
server.modules += ( "mod_openssl" )
ssl.engine = "enable"
ssl.pemfile = "$TLSDIR/cert.pem"
ssl.privkey = "$TLSDIR/key.pem"
ssl.read-ahead = "enable"
ssl.openssl.ssl-conf-cmd = ( "MinProtocol" => "TLSv1.3", "Ciphersuites" => "$TLS_SUITE",
                             "Groups" => "$TLS_GROUP", "NumTickets" => "1" )
EOF
    CMD=(lighttpd -D -f "$d/$conf")
}

# shellcheck disable=SC2086   # the pin: a command prefix, split on purpose
measure() {  # NAME SCENARIO TOOL CLIENT-PIN ARGS... (URL last)
    # TOOL: wrk, h2load, tlsload, or wrk-tls (wrk pinned to the TLS
    # parameters by PIN_CNF).  MIN_BYTES=N before the call: a run whose
    # responses average fewer than N bytes is invalid (measure_retrying).
    local name=$1 scen=$2 tool=$3 pin=$4; shift 4
    local -a warm=("$@") run=("$@")
    case $tool in
    wrk)  warm=(wrk -d"${WARMUP}s" "$@"); run=(wrk -d"${DURATION}s" -s "$LIB/wrk_report.lua" "$@") ;;
    wrk-tls)
        warm=(env "OPENSSL_CONF=$PIN_CNF" wrk -d"${WARMUP}s" "$@")
        run=(env "OPENSSL_CONF=$PIN_CNF" wrk -d"${DURATION}s" -s "$LIB/wrk_report.lua" "$@")
        tool=wrk ;;
    h2load-tls)   # pinned to the TLS parameters by PIN_CNF, as wrk-tls
        warm=(env "OPENSSL_CONF=$PIN_CNF" h2load -D "$WARMUP" "$@")
        run=(env "OPENSSL_CONF=$PIN_CNF" h2load -D "$DURATION" "$@")
        tool=h2load ;;
    tlsload)
        warm=("$TLSLOAD" -d "$WARMUP" --ciphersuites "$TLS_SUITE" --groups "$TLS_GROUP" "$@")
        run=("$TLSLOAD" -d "$DURATION" --ciphersuites "$TLS_SUITE" --groups "$TLS_GROUP" "$@") ;;
    *)    warm=(h2load -D "$WARMUP" "$@"); run=(h2load -D "$DURATION" "$@") ;;
    esac
    $pin "${warm[@]}" >>"$CLIENT_LOG" 2>&1
    measure_retrying "$SPID" --server "$name" --scenario "$scen" --pid "$SPID" --tool "$tool" \
        -- $pin "${run[@]}"
}
# While retrying a disturbed run (measure_retrying): the servers still to
# start, each with its checks (and its TLS instance's).
seconds_reserved() { echo $(( SERVERS_LEFT * (8 + 8 * TLS) )); }

bench_server() {  # NAME EXTRA-FLAGS ROUND
    local name=$1 extra=${2:-} round=${3:-1}
    say "== $name$(round_note "$round")"
    start_server "$name" "$PIN_SERVER" "$extra" || return 0
    local url=http://127.0.0.1:$PORT
    # where h2c is spoken: the same port, but for nginx (conf_nginx)
    local h2port=$PORT
    [ "$name" = nginx ] && h2port=$H2C_PORT
    if [ "$round" = 1 ]; then
        # (e) first, on a fresh server: memory per idle keep-alive connection
        local serving=self
        [ "$name" = nginx ] && serving=children   # the worker holds the connections
        $PIN_CLIENT "$PY" "$LIB/bench.py" idle --out "$RESULTS" --server "$name" --pid "$SPID" \
            --port "$PORT" --n "$IDLE_CONNS" --serving "$serving"
        sleep 1
    fi
    local scen h2url=http://127.0.0.1:$h2port
    if [ "$round" = 1 ]; then
        # (m) memory per idle h2c connection, also on a fresh server
        $PIN_CLIENT "$PY" "$LIB/bench.py" idle --h2 --out "$RESULTS" --server "$name" --pid "$SPID" \
            --port "$h2port" --n "$IDLE_CONNS" --serving "$serving"
        sleep 1
    fi
    for scen in ka close pipe 1m h2-small h2-1m; do
        case $scen in
        ka)    measure "$name" ka    wrk    "$PIN_CLIENT" -t1 -c64 "$url/index.html" ;;
        close) measure "$name" close wrk    "$PIN_CLIENT" -t1 -c64 -H 'Connection: close' "$url/index.html" ;;
        pipe)  measure "$name" pipe  h2load "$PIN_CLIENT" --h1 -t1 -c64 -m16 "$url/index.html" ;;
        1m)    measure "$name" 1m    wrk    "$PIN_CLIENT" -t1 -c16 "$url/1m.bin" ;;
        h2-small) measure "$name" h2-small h2load "$PIN_CLIENT" -t1 -c64 -m32 "$h2url/index.html" ;;
        h2-1m) MIN_BYTES=1048576 measure "$name" h2-1m h2load "$PIN_CLIENT" -t1 -c64 -m32 "$h2url/1m.bin" ;;
        esac
        if ! kill -0 "$SPID" 2>/dev/null; then
            server_died "$name" "$name" "$scen" 5 "$name DIED during $scen: its remaining scenarios are skipped"
            return 0
        fi
    done
    stop_server
}

bench_tls() {  # NAME EXTRA-FLAGS ROUND: the same server again, HTTPS only
    local name=$1 extra=${2:-} round=${3:-1} key=$1-tls ok=0
    say "== $name over TLS$(round_note "$round")"
    TLS_MODE=1
    start_server "$key" "$PIN_SERVER" "$extra" || ok=1
    TLS_MODE=0
    [ "$ok" = 0 ] || return 0
    local url=https://127.0.0.1:$PORT scen
    for scen in tls-hs tls-ka tls-1m h2tls-small h2tls-1m; do
        case $scen in
        tls-hs) measure "$name" tls-hs tlsload "$PIN_CLIENT" -c 64 -n 1 "$url/index.html" ;;
        tls-ka) measure "$name" tls-ka wrk-tls "$PIN_CLIENT" -t1 -c64 "$url/index.html" ;;
        tls-1m) MIN_BYTES=1048576 measure "$name" tls-1m wrk-tls "$PIN_CLIENT" -t1 -c16 "$url/1m.bin" ;;
        h2tls-small) measure "$name" h2tls-small h2load-tls "$PIN_CLIENT" -t1 -c64 -m32 "$url/index.html" ;;
        h2tls-1m) MIN_BYTES=1048576 measure "$name" h2tls-1m h2load-tls "$PIN_CLIENT" -t1 -c64 -m32 "$url/1m.bin" ;;
        esac
        if ! kill -0 "$SPID" 2>/dev/null; then
            server_died "$key" "$name" "$scen" 5 "$key DIED during $scen: its remaining scenarios are skipped"
            return 0
        fi
    done
    stop_server
}

# ------------------------------------------------------------------ run ----
say_machine
say "bench: ${DURATION}s runs after ${WARMUP}s warm-ups, $IDLE_CONNS idle connections, fd limit $NOFILE, workdir $WORK"
wait_for_quiet
SERVERS_LEFT=$(wc -w <<<"$SERVERS")
WITH_WORKERS=0
[ "$HAVE_WORKERS" = 1 ] && [[ " $SERVERS " == *" eddy "* ]] && WITH_WORKERS=1
PLANNED_RUNS=$(( REPEAT * (SERVERS_LEFT * (6 + 5 * TLS) + WITH_WORKERS * 2) ))
[ "$WITH_WORKERS" = 1 ] || say "bench: eddy has no --workers flag yet: skipping the 1-vs-2-worker row"
for round in $(seq "$REPEAT"); do
    for s in $SERVERS; do
        [ "$round" = 1 ] && SERVERS_LEFT=$((SERVERS_LEFT - 1))
        w=""
        [ "$s" = eddy ] && w=$EDDY_W
        if may_run "$s"; then bench_server "$s" "$w" "$round"; fi
        if [ "$TLS" = 1 ] && may_run "$s-tls"; then
            bench_tls "$s" "$w" "$round"
        fi
    done
    if [ "$WITH_WORKERS" = 1 ]; then
        for w in 1 2; do
            say "== eddy --workers $w (server and client unpinned)"
            if start_server "eddy-w${w}u" "" "--workers $w"; then
                measure "eddy-w${w}u" ka wrk "" -t1 -c64 "http://127.0.0.1:$PORT/index.html"
                stop_server
            fi
        done
    fi
done

report bench.py --idle "$IDLE_CONNS" --tls "$TLS"
