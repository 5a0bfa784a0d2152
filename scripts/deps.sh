#!/bin/sh
# Installs the Debian packages a make target needs, when they are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
# usage: scripts/deps.sh build|test|clang|deb
set -eu

# node-llhttp: llhttp's C sources, compiled into eddy in strict mode.
# libnghttp2-dev: HTTP/2 framing, HPACK and flow control.
# libjansson-dev, libcurl4-openssl-dev: the ACME client's JSON and HTTPS.
# libyaml-dev: the configuration file (eddy -c).
# libsystemd-dev: the program's sd_notify and socket activation (systemd).
# libjs-dygraphs, xxd: the status dashboard's charts, built into the binary
# as C arrays (Debian 12's build-essential has no xxd).
build_pkgs="node-llhttp liburing-dev libssl-dev libnghttp2-dev libjansson-dev libcurl4-openssl-dev libyaml-dev libsystemd-dev libjs-dygraphs xxd"
# tests/integration/tls.py: openssl (certificates, s_client), testssl.sh,
# chromium and libnss3-tools (certutil: the test CA in Chromium's NSS db).
# tests/integration/h2.py: python3-h2 (its hpack and hyperframe build the
# frames), nghttp2-client (nghttp, h2load).
# tests/integration/acme.py: pebble (the test CA and its DNS server), wrk.
# tests/integration/proxy.py: python3-websockets (WebSocket client and backend).
# tests/integration/metrics.py: prometheus (promtool), chromium (the dashboard).
# tests/integration/service.py: systemd (systemd-socket-activate).
test_pkgs="libcmocka-dev python3 python3-h11 python3-h2 nghttp2-client curl slowhttptest openssl testssl.sh chromium libnss3-tools pebble wrk python3-websockets prometheus systemd"
# CI's second compiler and make fuzz; Debian ships libFuzzer and the
# sanitizer runtimes apart from clang, as a recommendation apt skips here.
clang_pkgs="clang libclang-rt-14-dev"
# make deb: dpkg-buildpackage with debhelper (compat 13) under fakeroot.
deb_pkgs="build-essential dpkg-dev debhelper fakeroot"

case "${1:-build}" in
    build) want="$build_pkgs" ;;
    test)  want="$build_pkgs $test_pkgs" ;;
    clang) want="$build_pkgs $clang_pkgs" ;;
    deb)   want="$build_pkgs $deb_pkgs" ;;
    *) echo "usage: $0 build|test|clang|deb" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # Package lists may be absent on a fresh machine; fetch them once.
    if ! apt-get install -y --no-install-recommends $missing; then
        apt-get update
        apt-get install -y --no-install-recommends $missing
    fi
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run: sudo apt-get update && sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi
