#!/bin/bash
# make deb: builds the Debian package with dpkg-buildpackage from a copy of
# the working tree (tracked files and new ones git does not ignore), so the
# tree gets nothing but the results in BUILD_DIR:
#   eddy_VERSION_ARCH.deb, and the .buildinfo and .changes beside it.
# VERSION is EDDY_VERSION in include/eddy.h; debian/changelog gets an entry
# for it in the copy when its newest one names another.
# usage: scripts/build-deb.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: $0 BUILD_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$(sed -n 's/^#define EDDY_VERSION "\(.*\)"$/\1/p' include/eddy.h)
[ -n "$version" ] || { echo "build-deb: no EDDY_VERSION in include/eddy.h" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/eddy-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
src="$stage/eddy-$version"
mkdir "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Files deleted but not yet committed are left out (--ignore-failed-read).
    git ls-files -z --cached --others --exclude-standard -- . ':!:build' |
        tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$src"
else
    tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C "$src"
fi

# The changelog's newest entry carries the version.
top=$(dpkg-parsechangelog -l debian/changelog -S Version)
if [ "$top" != "$version" ]; then
    echo "build-deb: debian/changelog says $top, include/eddy.h $version: adding an entry in the copy"
    maint=$(sed -n 's/^Maintainer: //p' debian/control)
    {
        printf 'eddy (%s) unstable; urgency=medium\n\n' "$version"
        printf '  * Version %s (EDDY_VERSION in include/eddy.h).\n\n' "$version"
        printf ' -- %s  %s\n\n' "$maint" "$(date -R)"
        cat debian/changelog
    } > "$src/debian/changelog"
fi

echo "build-deb: dpkg-buildpackage -us -uc -b in $src"
(cd "$src" && dpkg-buildpackage -us -uc -b)

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
shopt -s nullglob
results=("$stage"/eddy_"$version"_"$arch".deb "$stage"/eddy_"$version"_"$arch".buildinfo "$stage"/eddy_"$version"_"$arch".changes)
[ -f "${results[0]}" ] || { echo "build-deb: no ${results[0]##*/} was made" >&2; exit 1; }
cp "${results[@]}" "$out"/
echo "build-deb: $out/${results[0]##*/}"
