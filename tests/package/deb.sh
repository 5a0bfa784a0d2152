#!/bin/bash
# The Debian package: `make deb`, its metadata and contents (dpkg-deb), the
# repository left clean; then, as root with a Debian 12 root at hand (the
# one ../shared/tools/fresh-ci keeps, used read-only under an overlay) or
# debootstrap to make one, `apt install ./eddy_*.deb` in a fresh chroot:
# eddy --version, the user eddy, the directories, the service not started
# without systemd, eddy serving as that user, and purge.
# usage: tests/package/deb.sh [BUILD_DIR]   (make test-package)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
fails=0
ok()   { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
finish() {
    [ "$fails" = 0 ] && echo "tests/package/deb.sh: all passed" || { echo "tests/package/deb.sh: $fails failed"; exit 1; }
    exit 0
}

version=$(sed -n 's/^#define EDDY_VERSION "\(.*\)"$/\1/p' include/eddy.h)

echo "== debian/control builds with what scripts/deps.sh installs"
build_pkgs=$(sed -n 's/^build_pkgs="\(.*\)"$/\1/p' scripts/deps.sh)
bdeps=$(sed -n '/^Build-Depends:/,/^[A-Z][A-Za-z-]*:/{/^Standards-Version:/d;p}' debian/control)
missing=""
for p in $build_pkgs; do grep -qE "(^|[ ,:])$p(,|\$| )" <<<"$bdeps" || missing="$missing $p"; done
[ -n "$build_pkgs" ] && [ -z "$missing" ] && ok "Build-Depends has all of: $build_pkgs" ||
    fail "Build-Depends lacks:$missing"

echo "== make deb"
strays() { # what dpkg-buildpackage would leave in the tree or beside it
    ls -d ../eddy_* ../eddy-dbgsym_* debian/build debian/eddy debian/files debian/.debhelper \
        debian/*.substvars debian/debhelper-build-stamp debian/*.debhelper.log eddy_* 2>/dev/null || true
}
before=$(strays)
if ! make --no-print-directory BUILD="$build" deb >"$build/deb.log" 2>&1; then
    tail -30 "$build/deb.log"; fail "make deb (whole log: $build/deb.log)"; finish
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="$build/eddy_${version}_${arch}.deb"
[ -f "$deb" ] && ok "made $deb" || { fail "no $deb"; finish; }
after=$(strays)
[ "$after" = "$before" ] && ok "the tree and its parent got no build files" || fail "make deb left: $after"

echo "== dpkg-deb -I"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = eddy ] && [ "$(field Version)" = "$version" ] &&
    ok "eddy $version (EDDY_VERSION)" || fail "Package/Version: $(field Package) $(field Version)"
dep=$(field Depends)
for p in adduser libc6 libssl3 libnghttp2-14 libcurl4 liburing2 libyaml-0-2 libjansson4; do
    grep -qE "(^|, )$p( |,|\$)" <<<"$dep" || fail "Depends lacks $p: $dep"
done
ok "Depends: $dep"
conff=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)
want_conf="/etc/eddy/eddy.yaml"
[ -f dist/logrotate/eddy ] && want_conf="$want_conf /etc/logrotate.d/eddy"
for c in $want_conf; do grep -qx "$c" <<<"$conff" || fail "not a conffile: $c"; done
ok "conffiles: $(tr '\n' ' ' <<<"$conff")"
for s in postinst postrm; do
    dpkg-deb -I "$deb" "$s" >/dev/null 2>&1 && ok "has a $s" || fail "no $s"
done
postinst=$(dpkg-deb -I "$deb" postinst)
grep -q 'adduser --quiet --system --group --no-create-home --home /var/lib/eddy' <<<"$postinst" &&
    ok "postinst makes the system user eddy" || fail "postinst makes no user"

echo "== dpkg-deb -c"
contents=$(dpkg-deb -c "$deb" | awk '{print $1, $2, $6}')
want="-rwxr-xr-x ./usr/sbin/eddy
-rw-r--r-- ./usr/share/man/man8/eddy.8.gz
-rw-r--r-- ./lib/systemd/system/eddy.service
-rw-r--r-- ./lib/systemd/system/eddy.socket
-rw-r--r-- ./etc/eddy/eddy.yaml
-rw-r--r-- ./usr/share/doc/eddy/eddy.yaml.example
-rw-r--r-- ./usr/share/doc/eddy/copyright
drwxr-xr-x ./var/log/eddy/
drwxr-xr-x ./var/lib/eddy/"
[ -f dist/logrotate/eddy ] && want="$want
-rw-r--r-- ./etc/logrotate.d/eddy"
while read -r mode path; do
    grep -qE "^$mode root/root $path\$" <<<"$contents" && ok "$mode $path" || fail "not in the package: $mode $path"
done <<<"$want"
[ -f dist/logrotate/eddy ] || echo "note: no dist/logrotate/eddy yet: the package has no logrotate snippet"
tmpx=$(mktemp -d); dpkg-deb -x "$deb" "$tmpx"
grep -qx 'ExecStart=/usr/sbin/eddy -c /etc/eddy/eddy.yaml --user eddy' "$tmpx/lib/systemd/system/eddy.service" &&
    ok "eddy.service: ExecStart=/usr/sbin/eddy -c /etc/eddy/eddy.yaml --user eddy" || fail "eddy.service's ExecStart"
rm -rf "$tmpx"

echo "== apt install ./${deb##*/} in a fresh Debian 12 chroot"
base=${FRESH_BASE:-/var/tmp/fresh-debian12}
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: chroot install: needs root (chroot, mounts)"; finish
fi
if [ -x "$base/usr/bin/apt-get" ]; then
    how="overlay"
elif command -v debootstrap >/dev/null; then
    how="debootstrap"
else
    echo "SKIP: chroot install: no Debian 12 root in $base and no debootstrap to make one"; finish
fi

w=$(mktemp -d /tmp/eddy-chroot.XXXXXX)
m="$w/m"
mkdir -p "$w/up" "$w/work" "$m"
srvpid=""
cleanup() {
    [ -n "$srvpid" ] && kill "$srvpid" 2>/dev/null && wait "$srvpid" 2>/dev/null
    for d in "$m/dev" "$m/proc"; do mountpoint -q "$d" && umount -l "$d"; done
    mountpoint -q "$m" && umount -l "$m"
    rm -rf "$w"
}
trap cleanup EXIT
if [ "$how" = overlay ]; then
    # The base is the lower layer: never written; every change goes to $w/up.
    if mount -t overlay overlay -o "lowerdir=$base,upperdir=$w/up,workdir=$w/work" "$m" 2>/dev/null; then
        echo "chroot: $base under an overlay"
    else
        echo "chroot: overlay mount failed; copying $base"
        cp -a "$base/." "$m/"
    fi
else
    mirror=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    mirror=${mirror:-http://deb.debian.org/debian}
    echo "chroot: debootstrap --variant=minbase bookworm from $mirror (a few minutes)"
    if ! debootstrap --variant=minbase bookworm "$m" "$mirror" >"$w/debootstrap.log" 2>&1; then
        tail -5 "$w/debootstrap.log"; fail "debootstrap"; finish
    fi
fi
mount -t proc proc "$m/proc"
mount --bind /dev "$m/dev"
cp /etc/resolv.conf "$m/etc/resolv.conf" 2>/dev/null || true
# apt as this machine has it: its Debian sources (and nothing else).
if [ ! -s "$m/etc/apt/sources.list" ] && [ ! -e "$m/etc/apt/sources.list.d/debian.sources" ]; then
    cp /etc/apt/sources.list.d/debian.sources "$m/etc/apt/sources.list.d/" 2>/dev/null || true
fi
cp "$deb" "$m/tmp/"
in_root() { chroot "$m" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
if [ -d "$m/run/systemd/system" ]; then
    fail "the chroot has /run/systemd/system: it would look like a systemd host"
fi

if ! in_root apt-get update -q >"$w/apt.log" 2>&1; then
    tail -5 "$w/apt.log"; fail "apt-get update in the chroot"; finish
fi
# Recommends (logrotate, and the cron it needs) are left out: their
# daemons would start in the chroot; eddy's must not.
if in_root sh -c "cd /tmp && apt install -y --no-install-recommends ./${deb##*/}" >>"$w/apt.log" 2>&1; then
    ok "apt install -y ./${deb##*/}"
else
    tail -20 "$w/apt.log"; fail "apt install ./${deb##*/} in the chroot"; finish
fi

v=$(in_root eddy --version 2>&1) && [ "$v" = "eddy $version" ] && ok "eddy --version in the chroot: $v" ||
    fail "eddy --version in the chroot: $v"
pw=$(in_root getent passwd eddy || true)
IFS=: read -r _ _ uid _ _ home shell <<<"$pw"
[ -n "$pw" ] && [ "$uid" -lt 1000 ] && [ "$home" = /var/lib/eddy ] && [ "$shell" = /usr/sbin/nologin ] &&
    ok "user eddy: $pw" || fail "user eddy: '$pw'"
in_root getent group eddy >/dev/null && ok "group eddy" || fail "no group eddy"
o=$(in_root stat -c '%U:%G %a' /var/lib/eddy /var/log/eddy | tr '\n' ' ')
[ "$o" = "eddy:eddy 750 eddy:adm 750 " ] && ok "/var/lib/eddy /var/log/eddy: $o" || fail "owners and modes: $o"
[ -L "$m/etc/systemd/system/multi-user.target.wants/eddy.service" ] && ok "eddy.service enabled" ||
    fail "eddy.service not enabled"
[ ! -e "$m/etc/systemd/system/sockets.target.wants/eddy.socket" ] && ok "eddy.socket not enabled" ||
    fail "eddy.socket enabled"
# Nothing may run from the chroot: no systemd there, so no service start.
running=""
for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$m" ] && running="$running $(cat "$p/comm" 2>/dev/null)"
done
[ -z "$running" ] && ok "nothing started in the chroot" || fail "running in the chroot:$running"
out=$(in_root eddy -t -c /etc/eddy/eddy.yaml 2>&1) && ok "eddy -t -c /etc/eddy/eddy.yaml" ||
    fail "eddy -t -c /etc/eddy/eddy.yaml: $out"

# The package's configuration, on a free port instead of 80, as the user
# eddy: a page, and its access log line.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
echo '<p>from the package</p>' >"$m/var/www/html/index.html"
chroot "$m" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    eddy -c /etc/eddy/eddy.yaml --listen "127.0.0.1:$port" --user eddy >"$w/serve.log" 2>&1 &
srvpid=$!
for _ in $(seq 1 50); do grep -q "listening on" "$w/serve.log" && break; sleep 0.1; done
resp=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 &&
        timeout 5 cat <&3) 2>/dev/null || true)
grep -q '^HTTP/1.1 200' <<<"$resp" && grep -q 'from the package' <<<"$resp" &&
    ok "serves /var/www/html on 127.0.0.1:$port" || { fail "no page: $(head -1 <<<"$resp")"; cat "$w/serve.log"; }
u=$(ps -o uid= -p "$srvpid" 2>/dev/null | tr -d ' ' || true)
[ "$u" = "$uid" ] && ok "runs as the user eddy (uid $uid)" || fail "runs as uid '$u', not $uid"
kill -TERM "$srvpid"; rc=0; wait "$srvpid" || rc=$?; srvpid=""
[ "$rc" = 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $rc: $(tail -2 "$w/serve.log")"
sleep 1.2 # the access log is written within a second
grep -q '"GET / HTTP/1.1" 200' "$m/var/log/eddy/access.log" 2>/dev/null && ok "access log line in /var/log/eddy/access.log" ||
    fail "no access log line in /var/log/eddy/access.log"

if in_root apt-get purge -y eddy >>"$w/apt.log" 2>&1; then
    [ ! -e "$m/var/log/eddy" ] && [ ! -e "$m/var/lib/eddy" ] && [ ! -e "$m/etc/eddy" ] &&
        ok "apt-get purge eddy: configuration, logs and state gone" ||
        fail "after purge: $(ls -d "$m"/var/log/eddy "$m"/var/lib/eddy "$m"/etc/eddy 2>/dev/null | sed "s|$m||g")"
else
    tail -10 "$w/apt.log"; fail "apt-get purge eddy"
fi
finish
