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

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# start NAME BINARY: a depotd with a 2 GiB thin LUN in $dir/NAME; prints its URL.
start() {
  local name=$1 binary=$2 data=$dir/$1/data
  mkdir -p "$dir/$name"
  "$binary" --data "$data" --api 127.0.0.1:0 --portal 127.0.0.1:0 --log-level warning >"$dir/$name/depotd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$data/iscsi.portals" ] && [ -s "$data/api.url" ] && break; sleep 0.1; done
  local api token portal iqn=iqn.2026-11.dev.depot:bench
  api=$(cat "$data/api.url"); token=$(cat "$data/api-token"); portal=$(head -1 "$data/iscsi.portals")
  depot() { DEPOT_API=$api DEPOT_TOKEN=$token "$here/.build/release/depot" "$@" >/dev/null; }
  depot pool create bench --path "$dir/$name/pool"
  depot volume create bench/lun --size 2G
  depot target create "$iqn" --allow-any
  depot target lun map "$iqn" bench/lun
  echo "iscsi://$portal/$iqn/0"
}
after_url=$(start after "$here/.build/release/depotd")
before_url=$(start before "$here/.build-before/release/depotd")
echo "after  ($(git -C "$here" rev-parse --short HEAD), this tree): $after_url"
echo "before ($rev): $before_url"
"$shared/iscsi-bench" "$after_url" "$before_url"
