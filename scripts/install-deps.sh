#!/usr/bin/env bash
# Installs the Debian packages Depot builds and tests with, when missing.
# Runs apt-get only as root; otherwise names what is missing and goes on
# (the build then says what it lacks).
set -euo pipefail

PACKAGES=(
  pkg-config
  libsqlite3-dev      # GRDB's SQLite
  libcurl4            # FoundationNetworking (Foundation's URL loading, linked by tests)
  curl                # tests: /metrics and /health over http and https
  openssl             # tests: the API certificate's fingerprint (openssl x509)
  libiscsi-dev        # CLibISCSI: initiator library for integration tests
  libiscsi-bin        # iscsi-ls, iscsi-inq, iscsi-test-cu
  libaio-dev          # CLibAIO: O_DIRECT I/O engine
  zlib1g-dev          # CZlib: qcow2 compressed clusters (raw deflate)
  nfs-ganesha         # NFS server for the export tests
  nfs-ganesha-vfs     # its VFS FSAL
  rpcbind             # portmapper NFSv3 clients use to find Ganesha
  libnfs-utils        # nfs-ls, nfs-cp: libnfs's NFS client
  qemu-utils          # qemu-img: a hypervisor's block layer as client
  qemu-block-extra    # QEMU's nfs:// and iscsi:// drivers
  qemu-system-x86     # PXE/iPXE diskless boot test (TCG)
  ipxe-qemu           # iPXE ROMs for QEMU's NICs
  perl                # test helper: starts children with a clean signal mask
  systemd             # systemd-analyze verify of contrib/systemd/depotd.service
  man-db              # man -l: the man pages in Docs/man render without warnings
  groff-base          # its roff formatter
  xfsprogs            # mkfs.xfs -m reflink=1: reflink full clones (bench, XFS pool test)
  python3-fusepy      # scripts/faultfs.py: a FUSE file system failing fsync (flush-error test)
  python3-venv        # .build-venv: schemathesis from PyPI (SchemathesisTests)
  fuse3               # fusermount3 and /etc/fuse.conf for it
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 0
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi

# Schemathesis (PyPI; Debian has none): property-based tests of the API
# against Docs/openapi.yaml (SchemathesisTests), in .build-venv beside the tree.
SCHEMATHESIS=4.32.5
venv="$(cd "$(dirname "$0")/.." && pwd)/.build-venv"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS"; then
  echo "install-deps: schemathesis $SCHEMATHESIS into $venv"
  # Not fatal: only `make schemathesis` needs it.
  { /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS"; } ||
    echo "install-deps: schemathesis not installed; make schemathesis needs it" >&2
fi
