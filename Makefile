# Depot: the two set-up commands are `make run` and `make test`.
SWIFT ?= swift
DATA ?= ./depot-data
API ?= 127.0.0.1:8640

.PHONY: all deps build release run test bench-control clean

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

# Builds everything once, then runs every test (unit, API, end-to-end).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Control-plane benchmark (not a test): 1,000 thin volumes through the API.
bench-control: deps
	$(SWIFT) build -c release --product depotd
	$(SWIFT) build -c release --product depot
	$(SWIFT) build -c release --product depot-bench
	.build/release/depot-bench control --depotd .build/release/depotd --depot .build/release/depot

clean:
	rm -rf .build
