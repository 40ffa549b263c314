#!/usr/bin/env bash
# make bench-before [BEFORE=ref]: this tree's release depotd beside the release
# depotd of an earlier commit (BEFORE, default HEAD~1), in one run of
# ../shared/bin/iscsi-bench with the same initiators, LUN size and directory.
# The earlier binary is built in a worktree into .build-before/. Not a test.
# Env: BEFORE (git ref, default HEAD~1), BENCH_DIR, BENCH_SECS, BENCH_SCALE.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$here/../shared/bin" && pwd)
before=${BEFORE:-HEAD~1}
dir=${BENCH_DIR:-/var/tmp/depot-bench-before}
rev=$(git -C "$here" rev-parse --short "$before")
tree=/tmp/depot-before-$rev
if [ ! -x "$here/.build-before/release/depotd" ] || [ "$(cat "$here/.build-before/REVISION" 2>/dev/null)" != "$rev" ]; then
  [ -d "$tree" ] || git -C "$here" worktree add -f "$tree" "$rev" >/dev/null
  (cd "$tree" && swift build -c release --product depotd --scratch-path "$here/.build-before")
  echo "$rev" >"$here/.build-before/REVISION"
fi
rm -rf "$dir"
mkdir -p "$dir"

. "$here/scripts/bench-lun.sh"
# Every daemon start_bench_lun started (BENCH_PIDS), even one whose setup failed.
cleanup() { for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
start_bench_lun "$dir/after" "$here/.build/release/depotd" "$here/.build/release/depot"
after_url=$BENCH_URL
start_bench_lun "$dir/before" "$here/.build-before/release/depotd" "$here/.build/release/depot"
before_url=$BENCH_URL
echo "after  ($(git -C "$here" rev-parse --short HEAD), this tree): $after_url"
echo "before ($rev): $before_url"
"$shared/iscsi-bench" "$after_url" "$before_url"
