#!/usr/bin/env bash
# Fuzzes atc's parsers of untrusted input, one target after another, each
# for SECONDS (default 600), then folds what each found into its committed
# corpus (fuzz/corpus/TARGET, minimized) and prints a line per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (default: every target)
#
# Not run by CI, which replays the committed corpora (tests/fuzz_corpora.rs).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP=1 lets it
# use the nightly-only flags it needs on a stable toolchain. One fuzzer runs
# at a time, on one core. A crash, timeout or out-of-memory input is kept in
# fuzz/artifacts/TARGET/; replay one with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a TARGET FILE` in fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-600}"
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi

export RUSTC_BOOTSTRAP=1
target_dir="${FUZZ_TARGET_DIR:-target}"
# No sanitizer: atc is safe Rust, and ASan's bigger stack frames would make
# the targets overflow the worker-sized stack they run on (atc::fuzzing).
# Debug assertions turn integer overflow into a crash.
build_flags=(-s none -a --target-dir "$target_dir")

# Longest input per target: far more than a real one needs to reach every
# branch, small enough to keep mutating fast.
max_len() {
  case "$1" in
    instance_vars | query_string | headers) echo 8192 ;;
    api_body | resource_output) echo 16384 ;;
    *) echo 65536 ;;
  esac
}

cargo fuzz build "${build_flags[@]}"

logs="$target_dir/fuzz-logs"
mkdir -p "$logs"
summary=()
failed=0
for target in "${targets[@]}"; do
  corpus="corpus/$target"
  found="$target_dir/fuzz-found/$target"
  mkdir -p "$corpus" "$found" "artifacts/$target"
  log="$logs/$target.log"
  # New inputs go to `found`; the committed corpus is only read. Mutants
  # may be as long as max_len from the start (len_control=0): the seeds
  # are whole pipelines.
  if cargo fuzz run "${build_flags[@]}" "$target" "$found" "$corpus" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$target")" -len_control=0 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" >"$log" 2>&1; then
    result="ok"
  else
    failed=1
    artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
    kind=$(grep -m1 -o "panicked at .*\|ERROR: libFuzzer: [a-z -]*" "$log" || echo "see $log")
    result="FAILED: $kind ${artifact:+($artifact)}"
  fi
  # Fold what was found into the committed corpus: the fewest inputs that
  # still reach every branch reached (edges only: hit counts would keep
  # thousands).
  cp -n "$found"/* "$corpus"/ 2>/dev/null || true
  cargo fuzz cmin "${build_flags[@]}" "$target" "$corpus" -- \
    -set_cover_merge=1 -use_counters=0 -max_len="$(max_len "$target")" >>"$log" 2>&1 || true
  runs=$(grep -o "stat::number_of_executed_units: *[0-9]*" "$log" | grep -o "[0-9]*$" | tail -1 || true)
  files=$(find "$corpus" -type f | wc -l)
  bytes=$(du -sb "$corpus" | cut -f1)
  summary+=("$(printf '%-18s %12s execs in %ss  corpus %4s files %9s bytes  %s' \
    "$target" "${runs:-?}" "$seconds" "$files" "$bytes" "$result")")
done

printf '%s\n' "${summary[@]}"
exit "$failed"
