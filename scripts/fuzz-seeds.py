#!/usr/bin/python3
"""fuzz-seeds: the seed corpora of the in-process fuzz targets (Fuzz/corpus/).

From captured sessions (scripts/iscsi-capture.py: libiscsi's tools and
QEMU's iscsi driver through a relay) it takes each initiator stream (cut to
16 KiB) for `frames`, the login data segments for `login-keys`, and the SCSI
commands (CDB and immediate data) for `scsi`; the other targets get seeds
built from their specs here, and `qcow2` images made by qemu-img.
Usage: fuzz-seeds.py CAPTURE_DIR CORPUS_DIR
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile


def put(corpus, target, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def frames_of(stream):
    at = 0
    while at + 48 <= len(stream):
        bhs = stream[at:at + 48]
        ahs = bhs[4] * 4
        dlen = int.from_bytes(bhs[5:8], "big")
        end = at + 48 + ahs + (dlen + 3) // 4 * 4
        yield bhs, stream[at + 48 + ahs:at + 48 + ahs + dlen]
        at = end


def scsi_seed(commands):
    out = b""
    for cdb, data in commands:
        size = {6: 0, 10: 1, 12: 2, 16: 3}[len(cdb)]
        out += bytes([size]) + cdb + struct.pack(">H", len(data)) + data
    return out


def cdb_length(opcode):
    group = opcode >> 5
    return 6 if group == 0 else 16 if group == 4 else 12 if group == 5 else 10


def main(capture, corpus):
    commands = []
    for name in sorted(os.listdir(capture)):
        stream = open(os.path.join(capture, name), "rb").read()
        put(corpus, "frames", b"\0" + stream[:16384])
        for bhs, data in frames_of(stream):
            opcode = bhs[0] & 0x3F
            if opcode in (0x03, 0x04) and data:  # Login, Text Request
                put(corpus, "login-keys", data)
            if opcode == 0x01:  # SCSI Command
                cdb = bhs[32:32 + cdb_length(bhs[32])]
                commands.append((cdb, data[:4096]))
    for i in range(0, len(commands), 8):
        put(corpus, "scsi", scsi_seed(commands[i:i + 8]))
    # CHAP (RFC 7143 §12.1.3): the target's challenge and an initiator's answers, hex and base64.
    for text in [b"CHAP_A=5\0CHAP_I=1\0CHAP_C=0x" + b"a1" * 16 + b"\0",
                 b"CHAP_N=iqn.2026-12.dev.depot:host\0CHAP_R=0x" + b"0f" * 16 + b"\0",
                 b"CHAP_N=user\0CHAP_R=0bAAECAwQFBgcICQoLDA0ODw==\0CHAP_I=7\0CHAP_C=0b" + b"QUJD" * 8 + b"\0"]:
        put(corpus, "chap", text)
    # PERSISTENT RESERVE OUT (SPC-4 §6.16.3): service action, type, 24-byte parameter list.
    for sa, ptype in [(0, 0), (1, 5), (2, 5), (3, 3), (4, 5), (6, 0), (7, 1)]:
        plist = struct.pack(">QQIBBH", 0x2A, 0x2B if sa in (4, 5) else 0, 0, 0x01 if sa == 0 else 0, 0, 0)
        put(corpus, "prout", bytes([sa, ptype]) + plist)
    # EXTENDED COPY LID1 (SPC-4 §6.4): two identification-descriptor CSCDs, one block-to-block segment.
    cscd = bytes([0xE4, 0, 0, 0, 0x01, 0x03, 0, 0x10]) + bytes(16) + bytes([0, 0, 0, 0, 0, 0, 2, 0])
    segment = bytes([0x02, 0, 0, 0x18, 0, 0, 0, 1]) + \
        struct.pack(">HH", 0, 8) + bytes(4) + struct.pack(">QQ", 0, 64)
    header = bytes([0, 0, 0, 0]) + struct.pack(">H", 2 * len(cscd)) + bytes(6) + struct.pack(">I", len(segment))
    put(corpus, "xcopy", header + cscd + cscd + segment)
    # MODE SELECT (SPC-4 §7.5): the caching page (SBC-3 §6.4.5) and the control page.
    caching = bytes([0x08, 0x12, 0x04]) + bytes(17)
    control = bytes([0x0A, 0x0A, 0x02, 0x10]) + bytes(8)
    for page in (caching, control, caching + control):
        put(corpus, "mode-select", bytes([0, 0, 0, 0, 0, 0, 0, 0]) + page)
    # The API's request bodies (Docs/openapi.yaml).
    for body in [{"name": "p", "path": "/srv/p", "maxOvercommit": 2.5}, {"name": "v", "size": "10G",
                 "provisioning": "thin", "format": "qcow2", "blockSize": 4096}, {"size": "+1G", "force": True},
                 {"iqn": "iqn.2026-12.dev.depot:t", "allowAny": False}, {"volume": "default/v", "lun": 3},
                 {"initiator": "iqn.1998-01.com.vmware:esx1", "networks": ["10.0.0.0/24", "fd00::/64"]},
                 {"portals": ["127.0.0.1:3260"]}, {"portals": None}, {"user": "u", "secret": "0123456789ab"},
                 {"name": "before-upgrade"}, {"name": "ci", "role": "operator", "expires": "30d"},
                 {"clients": [{"match": "10.0.0.0/8", "access": "rw", "squash": "root"}]}]:
        put(corpus, "api-json", json.dumps(body).encode())
    # qcow2 images (qcow2.rst): v3 and v2 (compat 0.10), written, a compressed cluster, a backing file.
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "data.raw")
        with open(raw, "wb") as f:
            f.write(bytes(range(256)) * 256)
        images = []
        for i, opts in enumerate([["-o", "cluster_size=4096"], ["-o", "cluster_size=4096,compat=0.10"]]):
            img = os.path.join(tmp, "i%d.qcow2" % i)
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2"] + opts + [img, "256K"], check=True)
            images.append(img)
        for i, extra in enumerate([[], ["-c"]]):
            img = os.path.join(tmp, "c%d.qcow2" % i)
            subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096"]
                           + extra + [raw, img], check=True)
            images.append(img)
        top = os.path.join(tmp, "top.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", images[2],
                        "-F", "qcow2", top], check=True)
        images.append(top)
        for img in images:
            put(corpus, "qcow2", open(img, "rb").read())


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
