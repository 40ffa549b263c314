# Depot: the two set-up commands are `make run` and `make test`.
SWIFT ?= swift
DATA ?= ./depot-data
API ?= 127.0.0.1:8640

.PHONY: all deps build release run test format man bench bench-before bench-control bench-images bench-scale bench-snapshots fuzz-net fuzz powercut test-sanitizers schemathesis clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product depotd
	$(SWIFT) build -c release --product depot

# Builds release and starts depotd on embedded defaults in ./depot-data.
run: release
	.build/release/depotd --data $(DATA) --api $(API)

# Builds everything once, then runs every test: unit and API tests in
# parallel, then the end-to-end tests (real depotd, Ganesha, QEMU, libiscsi)
# one at a time, so they do not starve each other on a 2-core machine.
test: deps
	@echo "swift format lint (.swift-format: 120 columns); 'make format' fixes it"
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip DepotEndToEndTests
	$(SWIFT) test --skip-build --filter DepotEndToEndTests --no-parallel
	@echo "in-process fuzz corpora (Fuzz/corpus): every input through its target"
	.build/debug/depot-fuzz replay Fuzz/corpus
	@echo "fuzz-net smoke: 60 s with the fixed seed, then 60 s with a random one"
	.build/debug/depot-bench fuzz-net --depotd .build/debug/depotd --seconds 60 --seed 1
	.build/debug/depot-bench fuzz-net --depotd .build/debug/depotd --seconds 60 --seed random
	@echo "Schemathesis smoke: every operation of Docs/openapi.yaml, 10 examples each, seed 1"
	./scripts/schemathesis.sh 10 1

# Schemathesis against Docs/openapi.yaml and a fresh debug depotd, longer
# (`make test` runs 10 examples per operation with seed 1).
EXAMPLES ?= 20
SEED ?= random
schemathesis: deps
	$(SWIFT) build --product depotd
	./scripts/schemathesis.sh $(EXAMPLES) $(SEED)

# Formats the tree as `make test` checks it (swift-format from the toolchain).
format:
	$(SWIFT) format format --in-place --recursive Sources Tests Package.swift

# Man pages from the binaries' own help (a test checks Docs/man/ is current).
man: build
	.build/debug/depot help-all --man > Docs/man/depot.1
	.build/debug/depotd --manual > Docs/man/depotd.8

# Black-box network fuzzer (not part of `make test`, which runs a 2 × 60 s
# smoke of it): hostile traffic of every kind against a release depotd while
# a healthy CHAP session verifies its data. SEED=random prints the seed used.
SECONDS ?= 600
fuzz-net: deps
	$(SWIFT) build -c release --product depotd
	$(SWIFT) build -c release --product depot-bench
	.build/release/depot-bench fuzz-net --depotd .build/release/depotd --seconds $(SECONDS) --seed $(SEED)

# In-process coverage-guided fuzzing (not part of `make test`, which
# replays the corpora): each libFuzzer target of Sources/depot-fuzz for
# FUZZ_SECONDS under AddressSanitizer and LeakSanitizer; FUZZ_TARGETS picks
# some (names: .build/debug/depot-fuzz list). Crashes land in Fuzz/crashes/.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=
# swiftc keeps only its last -sanitize= flag and SwiftPM passes address last,
# which drops the fuzzer's coverage instrumentation: the last flag names both.
FUZZ_FLAGS = --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address -Xswiftc -DDEPOT_FUZZ
fuzz: deps
	$(SWIFT) build --product depot-fuzz
	$(SWIFT) build --build-path .build-fuzz $(FUZZ_FLAGS) --product depot-fuzz
	scripts/fuzz.sh .build-fuzz/debug/depot-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The unit, SCSI, iSCSI and backstore tests under ThreadSanitizer, then
# AddressSanitizer (each its own build path; about 7 min to build here).
# Any report fails the run (halt_on_error). Not part of `make test`.
SANITIZED_TESTS = DepotSCSITests|DepotISCSITests|DepotCoreTests|DepotBackstoresTests
# End-to-end suites against the ASan depotd (DEPOT_BIN_DIR). HostileInputTests
# bounds depotd's RSS, which ASan's quarantine of freed memory (256 MiB) breaks,
# so it runs with the quarantine off.
SANITIZED_E2E = ISCSITargetTests|SessionBehaviourTests|LibISCSILoginTests|QCOW2VolumeTests|SnapshotTests|FlushErrorTests|PortalScopeTests|EnterpriseSCSITests|ALUATests
test-sanitizers: deps
	$(SWIFT) build --build-tests --build-path .build-tsan --sanitize=thread
	TSAN_OPTIONS=halt_on_error=1 $(SWIFT) test --skip-build --build-path .build-tsan --sanitize=thread --filter "$(SANITIZED_TESTS)"
	$(SWIFT) build --build-tests --build-path .build-asan --sanitize=address
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --skip-build --build-path .build-asan --sanitize=address --filter "$(SANITIZED_TESTS)"
	DEPOT_BIN_DIR=$(CURDIR)/.build-asan/debug ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --skip-build \
	  --build-path .build-asan --sanitize=address --no-parallel --filter "$(SANITIZED_E2E)"
	DEPOT_BIN_DIR=$(CURDIR)/.build-asan/debug ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=0 $(SWIFT) test \
	  --skip-build --build-path .build-asan --sanitize=address --no-parallel --filter HostileInputTests

# Power-cut simulation at scale (`make test` runs it with 120 cuts): a
# random workload on a raw and a qcow2 LUN recorded by scripts/faultfs.py,
# then CUTS rebuilt disks checked by scripts/powercut.py. POWERCUT_SEED=N
# replays a run; the seed is printed.
CUTS ?= 3000
COMMANDS ?= 600
powercut: deps
	$(SWIFT) build --build-tests
	POWERCUT_CUTS=$(CUTS) POWERCUT_COMMANDS=$(COMMANDS) $(SWIFT) test --skip-build --filter PowerCutTests

# Control-plane benchmark (not a test): 1,000 thin volumes through the API.
bench-control: deps
	$(SWIFT) build -c release --product depotd
	$(SWIFT) build -c release --product depot
	$(SWIFT) build -c release --product depot-bench
	.build/release/depot-bench control --depotd .build/release/depotd --depot .build/release/depot

clean:
	rm -rf .build

# Data-path benchmark (not a test): Depot beside Linux tgt and istgt with real
# initiators (qemu-img bench, iscsi-perf), each row beside its ceiling (the same
# command on a local file); CPU per operation, depotd's peak RSS (scripts/bench.sh).
bench: deps
	$(SWIFT) build -c release --product depotd
	$(SWIFT) build -c release --product depot
	@command -v tgtd >/dev/null || apt-get install -y tgt
	@command -v istgt >/dev/null || apt-get install -y istgt
	./scripts/bench.sh

# This tree's depotd beside an earlier commit's (BEFORE=ref, default HEAD~1),
# built into .build-before/, in one iscsi-bench run: the gate for changes to
# the data path (every row >= 0.97 of before). Not a test.
BEFORE ?= HEAD~1
bench-before: deps
	$(SWIFT) build -c release --product depotd
	$(SWIFT) build -c release --product depot
	BEFORE=$(BEFORE) ./scripts/bench-before.sh

# Snapshot benchmark (not a test): qcow2 vs raw LUNs beside QEMU's own
# ratio, a 32-layer chain, full clones (ext4 and XFS reflink), snapshot and
# linked-clone latency under load. Results: Docs/Performance.md.
bench-snapshots: deps
	$(SWIFT) build -c release --product depotd
	$(SWIFT) build -c release --product depot
	$(SWIFT) build -c release --product depot-bench
	./scripts/bench-snapshots.sh

# Image benchmark (not a test): depot volume import/export beside qemu-img
# convert of the same image in the same directory; a 1 GiB stream's peak RSS.
bench-images: deps
	$(SWIFT) build -c release --product depotd
	$(SWIFT) build -c release --product depot
	./scripts/bench-images.sh

# Scale benchmark (not a test): 64 idle sessions (RSS), 256 sessions to 256
# targets logging in at once, then a verified 64-session QD32 soak.
SOAK_SECONDS ?= 600
bench-scale: deps
	$(SWIFT) build -c release --product depotd
	$(SWIFT) build -c release --product depot-bench
	.build/release/depot-bench scale --depotd .build/release/depotd --seconds $(SOAK_SECONDS)
