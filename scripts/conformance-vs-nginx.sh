#!/bin/bash
# Runs eddy's HTTP/1.1 conformance table (tests/conformance/cases.txt) against
# nginx serving the repo's www/, and prints a Markdown report of the cases
# where nginx answers differently from what the table expects.
#
# usage: scripts/conformance-vs-nginx.sh > report.md
#
# Uses the nginx already installed, else installs Debian's nginx-light (as
# root; otherwise prints the apt-get command and exits 1).  Runs a private
# nginx from a temporary directory: its own config, pid file, logs and temp
# files, one worker, listening on a free port of 127.0.0.1 only; the system's
# nginx (/etc/nginx, port 80), if any, is left alone.  That nginx is stopped
# and the directory removed on the way out, whatever happens.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
www="$repo/www"
runner="$repo/tests/conformance/run_table.py"

log() { echo "conformance-vs-nginx: $*" >&2; }

find_nginx() {
    command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

nginx_bin=$(find_nginx)
if [ -z "$nginx_bin" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "nginx is not installed; run:"
        log "  sudo apt-get install -y --no-install-recommends nginx-light"
        log "(and, if apt cannot find it, sudo apt-get update first)"
        exit 1
    fi
    log "installing nginx-light"
    export DEBIAN_FRONTEND=noninteractive
    # Package lists may be missing or stale on a fresh machine: refresh them
    # only if the install fails.
    if ! apt-get install -y --no-install-recommends nginx-light >&2; then
        apt-get update >&2
        apt-get install -y --no-install-recommends nginx-light >&2
    fi
    nginx_bin=$(find_nginx)
    [ -n "$nginx_bin" ] || { log "nginx-light installed, but no nginx program found"; exit 1; }
fi

version=$("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')
build=$("$nginx_bin" -V 2>&1)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/eddy-nginx.XXXXXX")
nginx_pid=""
runner_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    if [ -n "$runner_pid" ]; then
        kill -TERM "$runner_pid" 2>/dev/null || true
        wait "$runner_pid" 2>/dev/null || true
    fi
    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -TERM "$nginx_pid" 2>/dev/null || true
        # Give it a few seconds to take its worker down, then insist.
        for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Temporary files of the modules compiled in go to the temp dir too, not to
# the packaged defaults under /var/lib/nginx.
temp_paths=""
for m in client_body proxy fastcgi uwsgi scgi; do
    opt="--http-${m//_/-}-temp-path="
    case "$build" in *"$opt"*) ;; *) continue ;; esac
    case "$build" in *"--without-http_${m}_module"*) continue ;; esac
    mkdir -p "$tmp/temp/$m"
    temp_paths+="    ${m}_temp_path $tmp/temp/$m;"$'\n'
done

# As root, nginx's worker switches to an unprivileged user: the owner of www/,
# who can read it.
user_line=""
if [ "$(id -u)" -eq 0 ]; then
    user_line="user $(stat -c %U "$www") $(stat -c %G "$www");"
fi

cat > "$tmp/nginx.conf" <<EOF
# Private nginx for scripts/conformance-vs-nginx.sh
$user_line
worker_processes 1;
daemon off;
master_process on;
pid $tmp/nginx.pid;
error_log $tmp/error.log info;

events {
    worker_connections 512;
}

http {
    access_log $tmp/access.log;
$temp_paths
    types {
        text/html html htm;
        text/css css;
        application/javascript js;
        image/png png;
    }
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 75s;
    keepalive_requests 1000;

    server {
        listen 127.0.0.1:$port;
        server_name _;
        root $www;
        index index.html;
        error_page 404 /404.html;
    }
}
EOF

if ! "$nginx_bin" -t -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/error.log" 2>"$tmp/test.log"; then
    log "nginx rejects the generated config:"
    cat "$tmp/test.log" >&2
    exit 1
fi

"$nginx_bin" -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/error.log" </dev/null >"$tmp/stdout.log" 2>&1 &
nginx_pid=$!

# Ready when it accepts connections on the port.
ready=""
for _ in $(seq 50); do
    if ! kill -0 "$nginx_pid" 2>/dev/null; then
        break
    fi
    if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5).close()' "$port" 2>/dev/null; then
        ready=yes
        break
    fi
    sleep 0.1
done
if [ -z "$ready" ]; then
    log "nginx did not start listening on 127.0.0.1:$port; its logs:"
    cat "$tmp/stdout.log" "$tmp/error.log" >&2 2>/dev/null || true
    exit 1
fi
log "$version (pid $nginx_pid) on 127.0.0.1:$port, root $www"

echo "## eddy's conformance table against $version"
echo
echo "Cases where $version, serving www/ with \`error_page 404 /404.html\` and keep-alive on,"
echo "answers differently from tests/conformance/cases.txt:"
echo
# In the background and waited for, so that a signal to this script runs its
# traps at once rather than after the whole table.
status=0
python3 "$runner" --target "127.0.0.1:$port" --report &
runner_pid=$!
wait "$runner_pid" || status=$?
runner_pid=""
if ! kill -0 "$nginx_pid" 2>/dev/null; then
    log "nginx exited during the run; its error log:"
    cat "$tmp/error.log" >&2 || true
    status=1
fi
exit "$status"
