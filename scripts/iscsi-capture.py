#!/usr/bin/python3
"""iscsi-capture: a TCP relay that records what initiators send to a target.

Listens on LISTEN (host:port), relays every connection to TARGET
(host:port), and writes each connection's initiator-to-target bytes to
OUTDIR/conn-N.bin: real sessions (libiscsi, QEMU, iPXE) as seeds for the
`frames` fuzz target (scripts/fuzz-seeds.py). Runs until killed.
Usage: iscsi-capture.py LISTEN TARGET OUTDIR
"""
import os
import socket
import sys
import threading


def pump(src, dst, record):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if record is not None:
                record.write(data)
                record.flush()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main(listen, target, outdir):
    lh, lp = listen.rsplit(":", 1)
    th, tp = target.rsplit(":", 1)
    server = socket.create_server((lh, int(lp)), reuse_port=False)
    os.makedirs(outdir, exist_ok=True)
    n = 0
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection((th, int(tp)))
        record = open(os.path.join(outdir, "conn-%d.bin" % n), "wb")
        n += 1
        threading.Thread(target=pump, args=(client, upstream, record), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, None), daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
