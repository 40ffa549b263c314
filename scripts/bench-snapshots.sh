#!/usr/bin/env bash
# make bench-snapshots: qcow2 volumes and snapshots against raw ones, in one
# run on one machine (not a test; Docs/Performance.md has the results).
#  1. qcow2 LUN vs raw LUN in one depotd (QEMU's block layer over iSCSI),
#     beside QEMU's own qcow2/raw ratio on copies of the same files
#     (qemu-img bench, local): 4K strided reads and writes QD32 to allocated
#     clusters, 4K first writes (one per 64 KiB cluster, each run on volumes
#     and files never written; the better of two runs), 128K sequential
#     reads; the strided and 128K rows in ROUNDS (5) rounds, medians.
#  2. A 32-layer chain against a single qcow2 layer (the same reads).
#  3. A full clone of a 4 GiB volume with 1 GiB allocated: bytes written and
#     time against qemu-img convert of the same file (the better of two each,
#     alternating, caches dropped); on an XFS reflink=1
#     pool (a loop-mounted image) when the machine allows it.
#  4. depot-bench snapshots: snapshot and linked-clone latency on 1 TiB
#     volumes under QD32 writes, and the initiator's worst latency meanwhile.
# Env: BENCH_DIR (default /var/tmp/depot-bench-snapshots), ROUNDS (5).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCH_DIR:-/var/tmp/depot-bench-snapshots}
depotd=$here/.build/release/depotd
depot=$here/.build/release/depot
umount "$dir/xfs" 2>/dev/null || true
rm -rf "$dir"
mkdir -p "$dir"
pids=()
loop=""
cleanup() {
  # A daemon that is gone before it is stopped crashed: say so, with its log.
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "depotd $p died during the run; its log:" >&2; tail -50 "$dir/depotd.log" >&2 || true; }
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # depotd stops cleanly on SIGTERM (exit 0): anything else is a crash in its shutdown.
  for p in "${pids[@]}"; do
    status=0; wait "$p" 2>/dev/null || status=$?
    if [ "$status" -ne 0 ]; then
      echo "depotd $p exited $status when stopped (a crash at shutdown); its log:" >&2
      tail -40 "$dir/depotd.log" >&2 || true
    fi
  done
  if [ -n "$loop" ]; then umount "$dir/xfs" 2>/dev/null || true; losetup -d "$loop" 2>/dev/null || true; fi
  # Many GiB of volumes and copies: gone with the run (a full disk fails the tests' thick volumes).
  rm -rf "$dir"
}
trap cleanup EXIT

"$depotd" --data "$dir/data" --api 127.0.0.1:0 --portal 127.0.0.1:0 --log-level warning >"$dir/depotd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/data/iscsi.portals" ] && [ -s "$dir/data/api.url" ] && break; sleep 0.1; done
export DEPOT_API DEPOT_TOKEN
DEPOT_API=$(cat "$dir/data/api.url"); DEPOT_TOKEN=$(cat "$dir/data/api-token")
portal=$(head -1 "$dir/data/iscsi.portals")
iqn=iqn.2026-12.dev.depot:snapbench
d() { "$depot" "$@" >/dev/null; }
d pool create b --path "$dir/pool"
d target create $iqn --allow-any
lun=0
declare -A url
vol() { # name size format
  d volume create "b/$1" --size "$2" --format "$3"
  d target lun map $iqn "b/$1" --lun $lun
  url[$1]="iscsi://$portal/$iqn/$lun"
  lun=$((lun + 1))
}
vol raw 1G raw; vol q 1G qcow2; vol deep 1G qcow2
# First writes allocate: each run needs volumes (and files) never written (a
# second run on the same ones would measure overwrites). 4 GiB: 65,536 writes.
for r in 1 2; do vol rawfresh$r 4G raw; vol qfresh$r 4G qcow2; done
fill() { qemu-img bench -f raw -c 1024 -d 8 -s 1048576 -w --pattern=0x11 "$1" >/dev/null; }
for v in raw q deep; do fill "${url[$v]}"; done
# 31 snapshots of deep, 1 MiB rewritten after each: a 32-layer chain.
for i in $(seq 31); do
  d snapshot create "b/deep@s$i"
  qemu-img bench -f raw -c 1 -d 1 -s 1048576 -o $(( (i * 29 % 1024) << 20 )) -w --pattern=0x$((20 + i)) "${url[deep]}" >/dev/null
done

secs() { sed -n 's/.*completed in \([0-9.]*\) seconds.*/\1/p'; }
# ops/s of one qemu-img bench run: count, then qemu-img bench arguments.
rate() { local c=$1; shift; local s; s=$(qemu-img bench -c "$c" "$@" 2>&1 | secs); python3 -c "print(f'{$c/$s:.0f}')"; }
best() { local a b; a=$("$@"); b=$("$@"); echo $(( a > b ? a : b )); }
ratio() { python3 -c "print(f'{$1/$2:.2f}' if $2 else '-')"; }
step=$((1048576 + 4096))

# QEMU's own ratio: local copies of the files (writes must not touch the served ones).
sleep 1
cp --sparse=always "$dir/pool/raw.img" "$dir/local.img"
cp --sparse=always "$dir/pool/q.qcow2" "$dir/local.qcow2"
for r in 1 2; do
  qemu-img create -q -f raw "$dir/localfresh$r.img" 4G
  qemu-img create -q -f qcow2 "$dir/localfresh$r.qcow2" 4G
done

printf '%-36s %12s %12s %7s   %s\n' "workload" "depot qcow2" "depot raw" "ratio" "QEMU local qcow2/raw"
# Rounds of each row, the four runs of a round back to back: each side's
# figure is its median over the rounds, each ratio the median of the rounds'
# ratios (a pair run a moment apart shares the machine's mood of that moment;
# a row's runs spread over minutes do not).
rounds=${ROUNDS:-5}
median() { python3 -c "import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))" "$@"; }
row() { # name unit count qemu-img-bench-args (without -f and the file) -- iscsi names, local names
  local name=$1 unit=$2 count=$3 args=$4 qv=$5 rv=$6 ql=$7 rl=$8
  local as=() bs=() rs=() ls=() a b la lb i
  for i in $(seq "$rounds"); do
    # shellcheck disable=SC2086
    a=$(rate "$count" -f raw $args "${url[$qv]}"); b=$(rate "$count" -f raw $args "${url[$rv]}")
    # shellcheck disable=SC2086
    # shellcheck disable=SC2086
    la=$(rate "$count" -f qcow2 -t writeback $args $ql); lb=$(rate "$count" -f raw -t writeback $args $rl)
    as+=("$a"); bs+=("$b"); rs+=("$(ratio "$a" "$b")"); ls+=("$(ratio "$la" "$lb")")
  done
  a=$(median "${as[@]}"); b=$(median "${bs[@]}")
  local fa fb
  if [ "$unit" = MB/s ]; then fa="$(python3 -c "print(f'{$a*131072/1e6:.0f} MB/s')")"; fb="$(python3 -c "print(f'{$b*131072/1e6:.0f} MB/s')")"
  else fa="${a%.*} IOPS"; fb="${b%.*} IOPS"; fi
  printf '%-36s %12s %12s %7s   %s   (rounds: %s | QEMU %s)\n' "$name" "$fa" "$fb" "$(median "${rs[@]}")" "$(median "${ls[@]}")" "${rs[*]}" "${ls[*]}"
}
# Reads: QEMU reads the very files Depot serves (-U: they are open in depotd,
# and nothing writes them meanwhile), in the same page-cache state — a copy
# has its own (written in one sequential pass, its pages come in larger
# folios than those of a file filled by 1 MiB writes at QD8 over iSCSI).
row "4K strided read QD32 (allocated)" IOPS 200000 "-d 32 -s 4096 -S $step" q raw "-U $dir/pool/q.qcow2" "-U $dir/pool/raw.img"
row "4K strided write QD32 (allocated)" IOPS 200000 "-d 32 -s 4096 -S $step -w" q raw "$dir/local.qcow2" "$dir/local.img"
# The better of two runs, each on volumes and files of its own.
first() { # first-file second-file "qemu-img bench options": the better run's ops/s
  local a b
  # shellcheck disable=SC2086
  a=$(rate 65536 $3 -d 32 -s 4096 -S 65536 -w "$1"); b=$(rate 65536 $3 -d 32 -s 4096 -S 65536 -w "$2")
  echo $(( a > b ? a : b ))
}
fa=$(first "${url[qfresh1]}" "${url[qfresh2]}" "-f raw")
fb=$(first "${url[rawfresh1]}" "${url[rawfresh2]}" "-f raw")
la=$(first "$dir/localfresh1.qcow2" "$dir/localfresh2.qcow2" "-f qcow2 -t writeback")
lb=$(first "$dir/localfresh1.img" "$dir/localfresh2.img" "-f raw -t writeback")
printf '%-36s %12s %12s %7s   %s\n' "4K first writes QD32 (1 per 64K)" "$fa IOPS" "$fb IOPS" "$(ratio "$fa" "$fb")" "$(ratio "$la" "$lb")"
row "128K seq read QD16" MB/s 32000 "-d 16 -s 131072" q raw "-U $dir/pool/q.qcow2" "-U $dir/pool/raw.img"

echo
echo "32-layer chain against one qcow2 layer (the same data read; goal >= 0.80; $rounds rounds, medians):"
for w in "4K strided read QD32|200000|-d 32 -s 4096 -S $step" "128K seq read QD16|32000|-d 16 -s 131072"; do
  IFS='|' read -r name count args <<<"$w"
  as=(); bs=(); rs=()
  for i in $(seq "$rounds"); do
    # shellcheck disable=SC2086
    a=$(rate "$count" -f raw $args "${url[deep]}"); b=$(rate "$count" -f raw $args "${url[q]}")
    as+=("$a"); bs+=("$b"); rs+=("$(ratio "$a" "$b")")
  done
  printf '  %-34s %8.0f vs %8.0f ops/s   ratio %s   (rounds: %s)\n' "$name" "$(median "${as[@]}")" "$(median "${bs[@]}")" "$(median "${rs[@]}")" "${rs[*]}"
done

echo
echo "full clone of a 4 GiB volume with 1 GiB allocated:"
d volume create b/src --size 4G
d target lun map $iqn b/src --lun $lun
srcurl="iscsi://$portal/$iqn/$lun"; lun=$((lun + 1))
qemu-img bench -f raw -c 1024 -d 8 -s 1048576 -S 4194304 -w --pattern=0x33 "$srcurl" >/dev/null
d snapshot create b/src@base
layer=$("$depot" snapshot show b/src@base --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
allocated=$(du -B1 "$layer" | cut -f1)
# Twice each, alternating, caches dropped before each: the better of two on both sides.
times=()
for r in 1 2; do
  sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  t0=$(date +%s.%N); d volume clone b/src@base "b/copy$r" --full --wait --quiet; t1=$(date +%s.%N)
  sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  q0=$(date +%s.%N); qemu-img convert -t writeback -f raw -O raw "$layer" "$dir/converted$r.img"; q1=$(date +%s.%N)
  times+=("$t0" "$t1" "$q0" "$q1")
done
written=$(du -B1 "$dir/pool/copy1.img" | cut -f1)
python3 - "$allocated" "$written" "${times[@]}" <<'PY'
import sys
alloc, written = map(float, sys.argv[1:3])
t = list(map(float, sys.argv[3:]))
depots = [t[1] - t[0], t[5] - t[4]]
qemus = [t[3] - t[2], t[7] - t[6]]
depot, qemu = min(depots), min(qemus)
print(f"  ext4 pool: {depot:.2f} s, better of {depots[0]:.2f} / {depots[1]:.2f} (qemu-img convert -t writeback, which flushes as a "
      f"durable clone must, {qemu:.2f} s, better of {qemus[0]:.2f} / {qemus[1]:.2f}; ratio {qemu/depot:.2f}, goal >= 1.0); "
      f"bytes written {written/2**20:.0f} MiB for {alloc/2**20:.0f} MiB allocated ({written/alloc:.3f}x, goal <= 1.05)")
PY
if command -v mkfs.xfs >/dev/null && truncate -s 8G "$dir/xfs.img" && loop=$(losetup -f --show "$dir/xfs.img" 2>/dev/null) \
  && mkfs.xfs -q -m reflink=1 "$loop" && mkdir -p "$dir/xfs" && mount "$loop" "$dir/xfs"; then
  d pool create x --path "$dir/xfs/pool"
  d volume create x/src --size 4G
  d target lun map $iqn x/src --lun $lun
  xurl="iscsi://$portal/$iqn/$lun"; lun=$((lun + 1))
  qemu-img bench -f raw -c 1024 -d 8 -s 1048576 -S 4194304 -w --pattern=0x44 "$xurl" >/dev/null
  d snapshot create x/src@base
  t0=$(date +%s.%N); d volume clone x/src@base x/copy --full --wait --quiet; t1=$(date +%s.%N)
  python3 -c "t=$t1-$t0; print(f'  XFS reflink=1 pool: {t:.2f} s (goal < 1 s: {\"met\" if t < 1 else \"MISSED\"})')"
else
  echo "  XFS reflink pool: not measured (no loop device or mkfs.xfs here)"
fi

echo
"$here/.build/release/depot-bench" snapshots --depotd "$depotd"
