#!/usr/bin/env bash
# make fuzz: each in-process target under libFuzzer (ASan) for SECONDS.
# New inputs go to Fuzz/work/TARGET (not committed), crashes and leaks to
# Fuzz/crashes/TARGET/ (copy each into Fuzz/corpus/TARGET/ once fixed:
# `make test` replays the corpora). Exit status non-zero if any target failed.
# Usage: scripts/fuzz.sh BINARY SECONDS [TARGET...]
set -u
binary=$1 seconds=$2
shift 2
targets=("$@")
[ ${#targets[@]} -eq 0 ] && mapfile -t targets < <(.build/debug/depot-fuzz list 2>/dev/null || echo)
failed=()
for t in "${targets[@]}"; do
  mkdir -p "Fuzz/work/$t" "Fuzz/crashes/$t"
  echo "fuzz: $t for ${seconds}s"
  if ! SWIFT_BACKTRACE=enable=no LSAN_OPTIONS=suppressions=Fuzz/lsan.supp DEPOT_FUZZ_TARGET=$t "$binary" "Fuzz/work/$t" "Fuzz/corpus/$t" -max_total_time="$seconds" \
      -timeout=30 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="Fuzz/crashes/$t/" > "Fuzz/work/$t.log" 2>&1; then
    failed+=("$t")
    tail -40 "Fuzz/work/$t.log"
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|cov: " "Fuzz/work/$t.log" | tail -3
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in Fuzz/crashes/)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash, leak or sanitizer report"
