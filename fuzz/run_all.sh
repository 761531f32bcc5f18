#!/usr/bin/env bash
# Builds every fuzz target once, then runs each for RUNS executions (default 100000) from its seed
# corpus, with bounded memory, and prints a summary table (also written to logs/summary.md).
#
#   fuzz/run_all.sh [RUNS] [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Environment:
#   RSS_LIMIT_MB  libFuzzer -rss_limit_mb (default 2048): over it is an OOM finding
#   TIMEOUT_S     libFuzzer -timeout per input, in seconds (default 10): over it is a finding
#   SANITIZER     cargo fuzz -s (default none: the workspace forbids unsafe code, and an
#                 uninstrumented-for-ASan build of Burn is several times faster)
#
# Seeds: each target writes its valid seed inputs (src/seeds.rs) into corpus/<target>/ at start
# (SNNET_FUZZ_SEED_DIR); libFuzzer adds what it finds there. Findings land in
# artifacts/<target>/ (crash-*, oom-*, timeout-*); the run of a target stops at its first one.
# Reproduce one with `cargo +nightly fuzz run -s none <target> artifacts/<target>/<file>`.
set -uo pipefail
cd "$(dirname "$0")"

RUNS=${1:-100000}
shift || true
RSS_LIMIT_MB=${RSS_LIMIT_MB:-2048}
TIMEOUT_S=${TIMEOUT_S:-10}
SANITIZER=${SANITIZER:-none}

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# The longest input tried per target: about twice the largest seed.
max_len() {
    case "$1" in
        stitch_table | snnet_checkpoint) echo 32768 ;;
        weights_safetensors | weights_pth | model_config) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

cargo +nightly fuzz build -s "$SANITIZER" || exit 1
bin_dir="$PWD/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

# The scratch files of the targets that read paths, removed at the end.
scratch=$(mktemp -d /dev/shm/snnet-fuzz.XXXXXX 2> /dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT

mkdir -p logs
summary=logs/summary.md
{
    echo "| target | executions | time | exec/s | crashes | peak RSS | coverage (cov / ft) | corpus |"
    echo "|---|---|---|---|---|---|---|---|"
} > "$summary"
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    echo "== $t: $RUNS runs (max_len $(max_len "$t"))" >&2
    start=$(date +%s)
    # The binary cargo fuzz built, run as `cargo fuzz run` runs it but without cargo as its
    # parent: Linux carries the peak RSS across exec, so under cargo libFuzzer's `rss:` and
    # peak_rss_mb would report cargo's own (~130 MB) instead of the target's. One Rayon thread:
    # the fuzzer runs one input at a time, and this keeps a run's cost and memory reproducible.
    SNNET_FUZZ_SEED_DIR="$PWD/corpus/$t" SNNET_FUZZ_SCRATCH_DIR="$scratch" RAYON_NUM_THREADS=1 \
        "$bin_dir/$t" \
        -artifact_prefix="$PWD/artifacts/$t/" \
        -runs="$RUNS" -rss_limit_mb="$RSS_LIMIT_MB" -timeout="$TIMEOUT_S" \
        -max_len="$(max_len "$t")" -print_final_stats=1 "$PWD/corpus/$t" > "logs/$t.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    after=$(find "artifacts/$t" -type f | wc -l)
    crashes=$(( after - before ))
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes="? (exit $rc)"; fi
    [ "$rc" -ne 0 ] && failed=1
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    rate=$(( ${execs:-0} / (secs > 0 ? secs : 1) ))
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "logs/$t.log" | tail -1)
    last=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -1)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(sed -n 's/.*corp: \([0-9]*\)\/.*/\1/p' <<< "$last")
    printf '| %s | %s | %dm%02ds | %s | %s | %s MB | %s / %s | %s |\n' \
        "$t" "${execs:-?}" $((secs / 60)) $((secs % 60)) "${rate:-?}" "$crashes" \
        "${rss:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" >> "$summary"
done
echo
cat "$summary"
exit "$failed"
