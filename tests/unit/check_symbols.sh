#!/bin/sh
# Checks the public archive: every global symbol it defines is eddy_*, so
# nothing of eddy's inside (conn_*, loop_*, llhttp_* ...) can clash with an
# embedder's own symbols; and every function eddy.h declares is defined.
# usage: tests/unit/check_symbols.sh build/libeddy.a [include/eddy.h]
set -eu

lib=${1:?usage: $0 LIBEDDY.a [EDDY.h]}
header=${2:-include/eddy.h}
nm=${NM:-nm}

# "ADDRESS TYPE NAME" lines only; member names and blank lines dropped.
defined=$("$nm" -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u)

fail=0
others=$(printf '%s\n' "$defined" | grep -v '^eddy_' | grep -v '^$' || true)
if [ -n "$others" ]; then
    echo "check_symbols: $lib defines $(printf '%s\n' "$others" | wc -l) global symbols outside eddy_*:" >&2
    printf '%s\n' "$others" | sed 's/^/    /' >&2
    fail=1
fi

# Declarations start a line with their type; comments and static inline
# functions do not count.
declared=$(grep -v '^static' "$header" |
    grep -oE '^[a-z][^/]*[ *]eddy_[a-z0-9_]+\(' | grep -oE 'eddy_[a-z0-9_]+\($' |
    tr -d '(' | sort -u)
[ -n "$declared" ] || { echo "check_symbols: no function found in $header" >&2; exit 1; }
missing=$(printf '%s\n' "$declared" | while read -r f; do
    printf '%s\n' "$defined" | grep -qx "$f" || echo "$f"
done)
if [ -n "$missing" ]; then
    echo "check_symbols: $lib lacks functions $header declares:" >&2
    printf '%s\n' "$missing" | sed 's/^/    /' >&2
    fail=1
fi

[ "$fail" -eq 0 ] || exit 1
echo "check_symbols: $lib defines $(printf '%s\n' "$defined" | wc -l) global symbols, all eddy_*, every function of $header among them"
