# Golden Goose. `make help` lists the targets.
.DEFAULT_GOAL := help
CARGO ?= cargo
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/goose_bench

.PHONY: help deps run test lint deny deny-advisories fmt build bench loadtest fuzz

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

deps: ## Install missing OS packages (postgresql, nats-server) and rustfmt/clippy
	@scripts/install-deps.sh

run: ## Run the whole system on the embedded ledger (./.goose, http://127.0.0.1:8080)
	$(CARGO) run --release -p goosectl -- dev

test: deps ## The one test command: fmt check, clippy -D warnings, cargo deny, every test (real PostgreSQL + nats-server)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(MAKE) deny
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

lint: ## fmt check and clippy
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

deny: ## Licenses, banned crates and sources of every dependency (deny.toml); installs cargo-deny
	@command -v cargo-deny >/dev/null || $(CARGO) install --locked cargo-deny@0.20.2
	@# cargo deny reads every platform's dependencies; builds fetch only this one's.
	$(CARGO) fetch --locked
	$(CARGO) deny --offline check licenses bans sources

deny-advisories: ## RustSec advisories (needs github.com, which CI cannot reach)
	$(CARGO) deny check advisories

FUZZ_CASES ?= 1000000
fuzz: ## Long run of the parser/verifier fuzz targets (FUZZ_CASES cases each; make test runs 500-1000)
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --release -p goose-evidence -p goose-ledger -p goose-domain --lib fuzz -- --test-threads 1
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --release -p goose-runtime --lib damaged_tokens -- --test-threads 1

fmt: ## Format the code
	$(CARGO) fmt --all

build: ## Release build of every binary
	$(CARGO) build --release --workspace

bench: build ## The ledger benchmark matrix against $(DATABASE_URL) (see docs/benchmarks.md)
	./target/release/loadtest matrix --database-url $(DATABASE_URL)

loadtest: build ## Append 100k events with 32 writers x 100 against $(DATABASE_URL)
	./target/release/loadtest ledger --database-url $(DATABASE_URL) --events 100000 --writers 32 --batch 100 --baseline
