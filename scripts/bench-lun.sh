# Sourced by the benchmark scripts: start_bench_lun DIR DEPOTD DEPOT starts a
# depotd with its data in DIR/data and a 2 GiB thin LUN in DIR/pool, and sets
# BENCH_PID (to stop it) and BENCH_URL (the LUN's iscsi:// URL), and adds the pid
# to BENCH_PIDS at once, so a caller's EXIT trap stops the daemon even when a
# setup step after its start fails (set -e). Run it in the script itself, not
# in $(…): a subshell would lose the daemon's pid.
BENCH_PIDS=()
start_bench_lun() {
  local dir=$1 depotd=$2 depot=$3 data=$1/data iqn=iqn.2026-11.dev.depot:bench
  mkdir -p "$dir"
  "$depotd" --data "$data" --api 127.0.0.1:0 --portal 127.0.0.1:0 --log-level warning ${BENCH_EXTRA:-} >"$dir/depotd.log" 2>&1 &
  BENCH_PID=$!
  BENCH_PIDS+=("$BENCH_PID")
  for _ in $(seq 100); do [ -s "$data/iscsi.portals" ] && [ -s "$data/api.url" ] && break; sleep 0.1; done
  local api token portal
  api=$(cat "$data/api.url"); token=$(cat "$data/api-token"); portal=$(head -1 "$data/iscsi.portals")
  for args in "pool create bench --path $dir/pool" "volume create bench/lun --size 2G" "target create $iqn --allow-any" \
    "target lun map $iqn bench/lun"; do
    # shellcheck disable=SC2086 # the words of each command
    DEPOT_API=$api DEPOT_TOKEN=$token "$depot" $args >/dev/null
  done
  BENCH_URL="iscsi://$portal/$iqn/0"
}
