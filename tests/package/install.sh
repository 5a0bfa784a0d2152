#!/bin/bash
# make install's layout, make uninstall, the manual against `eddy --help`,
# and the systemd units (systemd-analyze verify, skipped without it).
# usage: tests/package/install.sh [BUILD_DIR]   (make test-package)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/eddy-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
ok()   { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

echo "== make install DESTDIR=$tmp/root PREFIX=/usr/local"
make --no-print-directory BUILD="$build" DESTDIR="$tmp/root" PREFIX=/usr/local install >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; echo "FAIL: make install"; exit 1; }

expected="etc/eddy/eddy.yaml 0644
usr/local/lib/systemd/system/eddy.service 0644
usr/local/lib/systemd/system/eddy.socket 0644
usr/local/sbin/eddy 0755
usr/local/share/doc/eddy/eddy.yaml.example 0644
usr/local/share/man/man8/eddy.8 0644"
# Another engineer's file: installed when it is there.
[ -f dist/logrotate/eddy ] && expected="etc/logrotate.d/eddy 0644
$expected"
expected=$(sort <<<"$expected")
got=$(cd "$tmp/root" && find . ! -type d -printf '%P %#m\n' | sort)
if [ "$got" = "$expected" ]; then
    ok "the installed files are exactly:"; sed 's/^/    /' <<<"$got"
else
    fail "installed files differ from the expected ones (< expected, > installed):"
    diff <(echo "$expected") <(echo "$got") | grep '^[<>]' | sed 's/^/    /' || true
fi
[ -f dist/logrotate/eddy ] || echo "note: no dist/logrotate/eddy yet: no logrotate snippet to install"

unit="$tmp/root/usr/local/lib/systemd/system/eddy.service"
if grep -qx 'ExecStart=/usr/local/sbin/eddy -c /etc/eddy/eddy.yaml --user eddy' "$unit"; then
    ok "eddy.service's ExecStart names the installed binary"
else
    fail "eddy.service's ExecStart: $(grep '^ExecStart=' "$unit")"
fi
v=$("$tmp/root/usr/local/sbin/eddy" --version)
[ "$v" = "eddy $(sed -n 's/^#define EDDY_VERSION "\(.*\)"$/\1/p' include/eddy.h)" ] &&
    ok "installed eddy --version: $v" || fail "installed eddy --version: $v"

echo "== make install again: an operator's configuration is kept"
echo "# mine" >>"$tmp/root/etc/eddy/eddy.yaml"
make --no-print-directory BUILD="$build" DESTDIR="$tmp/root" PREFIX=/usr/local install >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "make install (again)"; }
tail -1 "$tmp/root/etc/eddy/eddy.yaml" | grep -qx '# mine' && ok "eddy.yaml kept" || fail "eddy.yaml overwritten"

echo "== make uninstall"
make --no-print-directory BUILD="$build" DESTDIR="$tmp/root" PREFIX=/usr/local uninstall >"$tmp/uninstall.log" 2>&1 ||
    { cat "$tmp/uninstall.log"; fail "make uninstall"; }
left=$(cd "$tmp/root" && find . ! -type d -printf '%P\n' | sort)
[ "$left" = "etc/eddy/eddy.yaml" ] && ok "uninstall leaves the configuration alone" ||
    fail "after uninstall: $(tr '\n' ' ' <<<"$left")"

echo "== the manual has every flag of eddy --help"
"$build/eddy" --help >"$tmp/help"
flags=$(grep -oE '^ +(-[a-z], )?--[a-z0-9-]+' "$tmp/help" | grep -oE -- '--[a-z0-9-]+' | sort -u)
# Flags the manual describes: the first words of the lines after .TP.
sed -e 's/\\-/-/g' man/eddy.8 | awk 'prev == ".TP" { print } { prev = $1 }' >"$tmp/entries"
missing=""
for f in $flags; do
    grep -qE -- "(^|[ \"])$f([ \"]|$)" "$tmp/entries" || missing="$missing $f"
done
[ -z "$missing" ] && ok "eddy.8 describes all $(wc -w <<<"$flags") flags" || fail "eddy.8 lacks:$missing"
if command -v man >/dev/null; then
    warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l man/eddy.8 2>&1 >/dev/null || true)
    [ -z "$warn" ] && ok "man --warnings: none" || fail "man --warnings: $warn"
fi

echo "== systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
    # Installed under a PREFIX of its own (no DESTDIR), so ExecStart names
    # a binary that exists, as verify requires.
    p="$tmp/prefix"
    make --no-print-directory BUILD="$build" PREFIX="$p" SYSCONFDIR="$p/etc" install >"$tmp/install.log" 2>&1 ||
        { cat "$tmp/install.log"; fail "make install PREFIX=$p"; }
    if out=$(systemd-analyze verify --man=no "$p/lib/systemd/system/eddy.service" \
                 "$p/lib/systemd/system/eddy.socket" 2>&1) && [ -z "$out" ]; then
        ok "systemd-analyze verify eddy.service eddy.socket: no complaint"
    else
        fail "systemd-analyze verify: $out"
    fi
else
    echo "SKIP: systemd-analyze verify: systemd-analyze is not installed"
fi

[ "$fails" = 0 ] && echo "tests/package/install.sh: all passed" || { echo "tests/package/install.sh: $fails failed"; exit 1; }
