#!/bin/sh
# Runs each libFuzzer target for a while on a working copy of its seed corpus
# and fails if any of them found a crash, a leak, a sanitizer report or a
# timeout.  Called by `make fuzz` (fuzz/fuzz.mk); usage:
#   fuzz/run.sh BUILD_DIR SECONDS TARGET...
# Per target: the corpus grows in BUILD_DIR/corpus/TARGET (fuzz/corpus/TARGET
# is only read), the full log is BUILD_DIR/logs/TARGET.log and a crashing
# input lands in BUILD_DIR/artifacts/TARGET/.
set -u

dir=$1
seconds=$2
shift 2

# Per-target input size limit: whole requests and scripts need room; a
# path past 4096 bytes reaches the "too long" branch; field values are short.
max_len() {
    case "$1" in
        fuzz_request) echo 4096 ;;
        fuzz_conn) echo 8192 ;;
        fuzz_api) echo 8192 ;;
        fuzz_proxy) echo 8192 ;;
        fuzz_path) echo 5000 ;;
        *) echo 2048 ;;
    esac
}

# Sanitizers: stop at the first report, with a symbolized stack; leaks count.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:symbolize=1}"
# Temporary document roots go inside the build tree, so a crash (which skips
# their removal) leaves nothing in /tmp.
mkdir -p "$dir/tmp"
TMPDIR=$(cd "$dir/tmp" && pwd)
export TMPDIR

failed=""
summary=""
for t in "$@"; do
    bin="$dir/$t"
    corpus="$dir/corpus/$t"
    artifacts="$dir/artifacts/$t"
    log="$dir/logs/$t.log"
    mkdir -p "$corpus" "$artifacts" "$dir/logs"
    # The repo corpus is copied, never written: libFuzzer adds to the copy.
    if [ -d "fuzz/corpus/$t" ]; then
        cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
    fi
    # Inputs of bugs found and fixed: libFuzzer runs the corpus first, so
    # they come back as regression tests (fuzz/repro/conn-* is fuzz_conn's).
    if [ -d fuzz/repro ]; then
        for r in fuzz/repro/"${t#fuzz_}"-*; do
            if [ -e "$r" ]; then cp -n "$r" "$corpus"/; fi
        done
    fi
    echo "== $t: ${seconds}s, max_len $(max_len "$t"), corpus $corpus"
    "$bin" -max_total_time="$seconds" -detect_leaks=1 -max_len="$(max_len "$t")" \
        -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1
    rc=$?
    # Final numbers: the last status line and libFuzzer's stats.
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "   ${last:-no status line}"
    echo "   runs ${execs:-?}, ${rate:-?} exec/s, exit $rc"
    summary="$summary
$t: runs ${execs:-?}, ${rate:-?}/s, $(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*')"
    if [ $rc -ne 0 ]; then
        failed="$failed $t"
        echo "!! $t FAILED (exit $rc); the report (full log: $log):"
        # From the sanitizer's or libFuzzer's report to the saved input.
        sed -n '/==ERROR\|FUZZ INVARIANT\|runtime error\|ERROR: libFuzzer\|SUMMARY:/,$p' "$log" | head -n 120
        ls -1 "$artifacts" 2>/dev/null | sed "s|^|   artifact: $artifacts/|"
    fi
done

echo "== fuzz summary ($seconds s each)$summary"
if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed" >&2
    exit 1
fi
echo "fuzz: all targets clean"
