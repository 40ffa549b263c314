#!/usr/bin/python3
"""powercut: what a disk could hold after a power cut, at any point of a recorded run.

Reads the change log faultfs.py --record wrote while depotd served a test
workload, and a workload file the test wrote (its volumes and its commands,
in order). A cut at log position I keeps every change before I that the
file system had made durable — a write or truncation of a file followed,
still before I, by an fsync of that file — and of the others a random half
(a disk may keep any subset of unsynced writes, in any order). Directory
changes (create, rename, unlink) are kept in order: the model loses data,
not names.

At each cut the rebuilt files must hold:
  - the catalog: `PRAGMA integrity_check` ok, and every volume the test's
    "setup" mark acknowledged;
  - each volume (raw read directly; qcow2 through `qemu-img check`, which
    must find no corruption, and `qemu-img convert`): for every block, the
    data of the newest write acknowledged as durable before the cut (a FUA
    write, or any write followed by a completed SYNCHRONIZE CACHE of its LU)
    or of a write issued after it; zeros or any issued write where none was
    durable. A block holding anything else (old data, another block's data,
    a torn mix) is a lost or misplaced write.

Usage:
  powercut.py workload --seed S --commands N --blocks B   a random workload (JSON commands)
  powercut.py check LOG WORKLOAD --cuts N --seed S      N random cuts, offline
  powercut.py pick LOG WORKLOAD --count N --seed S      N cut points after the setup, one a line
  powercut.py materialize LOG WORKLOAD --cut I --seed S --out DIR
  powercut.py verify LOG WORKLOAD --cut I --dump LUN=FILE...
                                                 blocks read back through depotd
Exit status 0 when every cut holds; 1 with the failures named (cut, seed, block).

The workload file (JSON): {"blockSize": 4096, "setupMark": "setup",
"volumes": [{"lun": 0, "name": "default/raw", "path": "data/...img",
"format": "raw", "blocks": 2048}, ...], "commands": [{"op": "write"|"sync"|
"unmap", "lun": 0, "blk": 12, "n": 2, "fua": true}, ...]}. Command k's
acknowledgement is the mark ".powercut-mark-<k>"; a written block is
pattern(k, lun, blk) below.
"""
import bisect
import json
import os
import random
import sqlite3
import struct
import subprocess
import sys
import tempfile


def pattern(k, lun, blk, size):
    """The block command k writes at (lun, blk): a header naming it, then bytes that depend on it."""
    head = b"PWRCUT" + struct.pack(">HII", lun, k, blk)
    body = bytes((k * 7 + blk * 31 + i) & 0xFF for i in range(256)) * (size // 256)
    return head + body[len(head):size]


def read_log(path):
    entries = []
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data):
        op = data[at:at + 1]
        (plen,) = struct.unpack_from(">H", data, at + 1)
        name = data[at + 3:at + 3 + plen].decode()
        a, dlen = struct.unpack_from(">QI", data, at + 3 + plen)
        start = at + 3 + plen + 12
        if start + dlen > len(data):
            break  # a torn last entry (the recorder was killed)
        if op == b"R":
            name = "\0".join(n.lstrip("/") for n in name.split("\0"))
        elif op != b"M":
            name = name.lstrip("/")
        entries.append((op, name, a, memoryview(data)[start:start + dlen]))
        at = start + dlen
    return entries


class Log:
    """The log with each entry's file identity (paths change under renames)."""

    def __init__(self, path):
        self.entries = read_log(path)
        self.file = [None] * len(self.entries)
        self.syncs = {}  # file id -> sorted fsync indices
        self.marks = {}  # mark name -> index
        ids, next_id = {}, 0
        for i, (op, name, a, data) in enumerate(self.entries):
            if op == b"M":
                self.marks.setdefault(name, i)
            elif op == b"C":
                ids[name] = next_id
                next_id += 1
                self.file[i] = ids[name]
            elif op == b"R":
                old, new = name.split("\0")
                if old in ids:
                    ids[new] = ids.pop(old)
            elif op == b"U":
                ids.pop(name, None)
            elif op in (b"W", b"T", b"S"):
                if name not in ids:  # a file that was there before the recording: none in these runs
                    ids[name] = next_id
                    next_id += 1
                self.file[i] = ids[name]
                if op == b"S":
                    self.syncs.setdefault(ids[name], []).append(i)

    def durable(self, j, cut):
        """Whether entry j (a write or truncation) was made durable by an fsync before the cut."""
        syncs = self.syncs.get(self.file[j], [])
        k = bisect.bisect_right(syncs, j)
        return k < len(syncs) and syncs[k] < cut

    def materialize(self, cut, rng):
        """{path: bytearray} the disk holds after a cut at `cut`."""
        content, paths, dirs = {}, {}, set()
        for j in range(cut):
            op, name, a, data = self.entries[j]
            if op == b"D":
                dirs.add(name)
            elif op == b"X":
                dirs.discard(name)
            elif op == b"C":
                paths[name] = self.file[j]
                content[self.file[j]] = bytearray()
            elif op == b"U":
                paths.pop(name, None)
            elif op == b"R":
                old, new = name.split("\0")
                if old in paths:
                    paths[new] = paths.pop(old)
            elif op in (b"W", b"T"):
                f = self.file[j]
                paths.setdefault(name, f)
                buf = content.setdefault(f, bytearray())
                if not self.durable(j, cut) and rng.random() < 0.5:
                    continue
                if op == b"W":
                    end = a + len(data)
                    if len(buf) < end:
                        buf.extend(bytes(end - len(buf)))
                    buf[a:end] = data
                elif a < len(buf):
                    del buf[a:]
                else:
                    buf.extend(bytes(a - len(buf)))
        return {p: content[f] for p, f in paths.items()}, dirs


class Workload:
    def __init__(self, path):
        with open(path) as f:
            w = json.load(f)
        self.size = w["blockSize"]
        self.setup_mark = w["setupMark"]
        self.volumes = w["volumes"]
        self.commands = w["commands"]

    def expectations(self, log, cut):
        """{(lun, blk): (allowed stamps, what must be there)}: None for zeros."""
        acked = [log.marks.get(".powercut-mark-%d" % k, len(log.entries) + 1) < cut for k in range(len(self.commands))]
        issued = next((k for k in range(len(self.commands)) if not acked[k]), len(self.commands))
        # The newest completed SYNCHRONIZE CACHE of each LU, by command index.
        synced = {}
        for k in range(issued):
            c = self.commands[k]
            if c["op"] == "sync" and acked[k]:
                synced[c["lun"]] = k
        history = {}
        for k in range(issued + 1 if issued < len(self.commands) else issued):
            c = self.commands[k]
            if c["op"] not in ("write", "unmap"):
                continue
            durable = acked[k] and (c.get("fua") or synced.get(c["lun"], -1) > k)
            value = k if c["op"] == "write" else None
            for blk in range(c["blk"], c["blk"] + c["n"]):
                history.setdefault((c["lun"], blk), []).append((value, durable))
        result = {}
        for key, writes in history.items():
            last = max((i for i, (_, d) in enumerate(writes) if d), default=None)
            if last is None:
                allowed = {None} | {v for v, _ in writes}
            else:
                allowed = {v for v, _ in writes[last:]}
            result[key] = allowed
        return result, acked[0] if self.commands else False

    def check_blocks(self, lun, image, expected, blocks):
        """Failures in one volume's bytes."""
        failures = []
        zero = bytes(self.size)
        for blk in range(blocks):
            got = bytes(image[blk * self.size:(blk + 1) * self.size]).ljust(self.size, b"\0")
            allowed = expected.get((lun, blk), {None})
            if got == zero:
                stamp = None
            elif got[:6] == b"PWRCUT":
                glun, k, gblk = struct.unpack_from(">HII", got, 6)
                stamp = k if (glun, gblk) == (lun, blk) and got == pattern(k, lun, blk, self.size) else "foreign"
                if stamp == "foreign":
                    stamp = "data of command %d for LUN %d block %d%s" % (
                        k, glun, gblk, "" if (glun, gblk) != (lun, blk) else " (torn)")
            else:
                stamp = "bytes that no command wrote"
            if stamp not in allowed:
                want = sorted("zeros" if a is None else "command %d" % a for a in allowed)
                failures.append("LUN %d block %d holds %s; allowed: %s" % (
                    lun, blk, "zeros" if stamp is None else stamp if isinstance(stamp, str) else "command %d" % stamp,
                    ", ".join(want)))
                if len(failures) >= 5:
                    break
        return failures


def check_catalog(files, workload, log, cut):
    db = files.get("data/catalog.sqlite")
    if db is None:
        return [] if log.marks.get(workload.setup_mark, len(log.entries)) >= cut else ["no catalog"]
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in ("", "-wal"):
            if "data/catalog.sqlite" + suffix in files:
                with open(os.path.join(tmp, "c.sqlite" + suffix), "wb") as f:
                    f.write(files["data/catalog.sqlite" + suffix])
        try:
            con = sqlite3.connect(os.path.join(tmp, "c.sqlite"))
            ok = con.execute("PRAGMA integrity_check").fetchone()[0]
            names = set()
            if log.marks.get(workload.setup_mark, len(log.entries)) < cut:
                names = {r[0] for r in con.execute("SELECT name FROM volume")}
            con.close()
        except sqlite3.Error as e:
            return ["catalog: %s" % e]
    failures = [] if ok == "ok" else ["catalog integrity_check: %s" % ok]
    if log.marks.get(workload.setup_mark, len(log.entries)) < cut:
        for v in workload.volumes:
            if v["name"].split("/")[1] not in names:
                failures.append("catalog lost volume %s created before the cut" % v["name"])
    return failures


def volume_bytes(v, files, tmp):
    """A volume's virtual bytes at the cut, or (None, failure)."""
    image = files.get(v["path"])
    if image is None:
        return None, "volume file %s missing" % v["path"]
    if v["format"] == "raw":
        return image, None
    src, dst = os.path.join(tmp, "v.qcow2"), os.path.join(tmp, "v.raw")
    with open(src, "wb") as f:
        f.write(image)
    r = subprocess.run(["qemu-img", "check", "-f", "qcow2", src], capture_output=True, text=True)
    if r.returncode not in (0, 3):  # 3: leaked clusters only, harmless after a crash
        return None, "qemu-img check: %s%s" % (r.stdout.strip()[-400:], r.stderr.strip()[-400:])
    r = subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", src, dst], capture_output=True, text=True)
    if r.returncode != 0:
        return None, "qemu-img convert: %s" % r.stderr.strip()
    with open(dst, "rb") as f:
        return f.read(), None


def check_cut(log, workload, cut, seed):
    rng = random.Random(seed * 1000003 + cut)
    files, _ = log.materialize(cut, rng)
    failures = check_catalog(files, workload, log, cut)
    if log.marks.get(workload.setup_mark, len(log.entries)) < cut:
        expected, _ = workload.expectations(log, cut)
        with tempfile.TemporaryDirectory() as tmp:
            for v in workload.volumes:
                data, failure = volume_bytes(v, files, tmp)
                if failure:
                    failures.append("%s: %s" % (v["name"], failure))
                else:
                    failures += ["%s: %s" % (v["name"], f) for f in workload.check_blocks(
                        v["lun"], data, expected, v["blocks"])]
    return failures


def random_workload(seed, count, blocks):
    """Writes (some FUA) over both LUs, SYNCHRONIZE CACHEs, and whole-cluster UNMAPs on the
    qcow2 LU (LUN 1, 64 KiB clusters: 16 blocks), which free clusters for reuse."""
    rng = random.Random(seed)
    commands = []
    for _ in range(count):
        r = rng.random()
        if r < 0.12:
            commands.append({"op": "sync", "lun": rng.randrange(2), "blk": 0, "n": 0})
        elif r < 0.2:
            commands.append({"op": "unmap", "lun": 1, "blk": 16 * rng.randrange(blocks // 16), "n": 16})
        else:
            n = rng.choice([1, 1, 2, 4, 16])
            commands.append({"op": "write", "lun": rng.randrange(2), "blk": rng.randrange(blocks - n + 1), "n": n,
                             "fua": rng.random() < 0.2})
    return commands


def main(argv):
    if argv[:1] == ["workload"]:
        opts = dict(zip(argv[1::2], argv[2::2]))
        json.dump(random_workload(int(opts["--seed"]), int(opts["--commands"]), int(opts["--blocks"])), sys.stdout)
        return 0
    if len(argv) < 3:
        sys.exit(__doc__)
    mode, log, workload = argv[0], Log(argv[1]), Workload(argv[2])
    opts, dumps, i = {}, {}, 3
    while i < len(argv):
        if argv[i] == "--dump":
            lun, path = argv[i + 1].split("=", 1)
            dumps[int(lun)] = path
        else:
            opts[argv[i]] = argv[i + 1]
        i += 2
    if mode == "check":
        cuts, seed = int(opts["--cuts"]), int(opts["--seed"])
        rng = random.Random(seed)
        start = log.marks.get(workload.setup_mark, 0)
        span = range(start // 2, len(log.entries) + 1)
        points = sorted(rng.sample(span, min(cuts, len(span))))
        failed = 0
        for cut in points:
            failures = check_cut(log, workload, cut, seed)
            if failures:
                failed += 1
                print("cut %d (seed %d): %s" % (cut, seed, "; ".join(failures)))
        syncs = sum(len(s) for s in log.syncs.values())
        cuts = len(points)
        print("powercut: %d cuts over %d log entries (%d fsyncs, %d commands), seed %d: %d failed" % (
            cuts, len(log.entries), syncs, len(workload.commands), seed, failed))
        return 1 if failed else 0
    if mode == "pick":
        rng = random.Random(int(opts["--seed"]))
        start = log.marks.get(workload.setup_mark, 0) + 1
        for _ in range(int(opts["--count"])):
            print(rng.randrange(start, len(log.entries) + 1))
        return 0
    if mode == "materialize":
        cut, seed = int(opts["--cut"]), int(opts["--seed"])
        files, dirs = log.materialize(cut, random.Random(seed * 1000003 + cut))
        out = opts["--out"]
        for d in sorted(dirs, key=len):
            os.makedirs(os.path.join(out, d.lstrip("/")), exist_ok=True)
        for p, data in files.items():
            target = os.path.join(out, p.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)
        return 0
    if mode == "verify":
        cut = int(opts["--cut"])
        expected, _ = workload.expectations(log, cut)
        failures = []
        for v in workload.volumes:
            with open(dumps[v["lun"]], "rb") as f:
                failures += ["%s: %s" % (v["name"], x) for x in workload.check_blocks(
                    v["lun"], f.read(), expected, v["blocks"])]
        for f in failures:
            print("cut %d through depotd: %s" % (cut, f))
        return 1 if failures else 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
