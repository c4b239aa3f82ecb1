# dewar — see README.md. `make demo` and `make test` each do all the set-up a
# fresh Debian machine needs (as root).
SHELL := /bin/bash
# sudo's secure_path drops /usr/local/go/bin: find go there too.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# ... and let the scripts and tests that run `go` find the same one.
export PATH := $(patsubst %/,%,$(dir $(GO))):$(PATH)
PKG := github.com/dewarhq/dewar
TOOLS := $(CURDIR)/.tools
CNI_PLUGINS_VERSION := v1.9.0
STATICCHECK_VERSION := v0.7.0
DEBIAN_PACKAGES := zookeeper iproute2 iptables procps psmisc curl ca-certificates chromium busybox-static passwd
CNI_PLUGINS := main/bridge main/ptp main/macvlan main/loopback ipam/host-local ipam/static
BINARIES := dewar-executor dewar-agent dewar-scheduler dewar-serverset dewar-observer
# Programs the tests and the demo run (internal/testprog/NAME, built as
# dewar-test-NAME; internal/testenv.Program finds them in bin/).
TEST_PROGRAMS := webserver cnirecorder

export DEWAR_CNI_PLUGINS_DIR := $(TOOLS)/cni
# Files tests keep (t.ArtifactDir: the observer's browser screenshots).
TEST_OUTPUT := $(CURDIR)/.test-output

.PHONY: all build deps deps-debian deps-go deps-mesos test test-unit test-mesos reliability fuzz bench demo demo-stop clean

all: build

# dewar-executor is static (CGO_ENABLED=0): no libc and its NSS modules
# mapped into every executor (about 2.5 MiB of resident memory each); it
# resolves roles through NSS with getent and id instead (sandbox/
# account_linux.go). It is linked without a symbol table and DWARF (-s):
# Aurora fetches it into every sandbox, and the kernel's read-ahead around
# the pages an executor runs reads those sections into the page cache too
# (10.6-12.6 against 14.2-15.3 MiB of page cache per executor, README
# "Executor overhead to reserve in Aurora"; stack traces and
# pprof use the function tables, which stay). See "Limits and notes" in
# the README.
build:
	@mkdir -p bin
	$(GO) build -o bin/ $(addprefix ./cmd/,$(filter-out dewar-executor,$(BINARIES)))
	CGO_ENABLED=0 $(GO) build -ldflags=-s -o bin/ ./cmd/dewar-executor
	@for p in $(TEST_PROGRAMS); do $(GO) build -o bin/dewar-test-$$p ./internal/testprog/$$p || exit 1; done

deps: deps-debian deps-go deps-mesos

# A real Mesos 1.12 in /opt/mesos is a test dependency, like ZooKeeper; it
# has no Debian package. MESOS_INSTALL names an installer for it (the CI
# machines keep one beside the checkout); `make deps` runs it when it
# exists. Without Mesos, e2e/mesos fails under `make test` saying so.
MESOS_INSTALL ?= $(CURDIR)/../shared/mesos/install.sh
deps-mesos:
	@if [ -f $(MESOS_INSTALL) ]; then $(MESOS_INSTALL) >/dev/null; fi

# Idempotent: only runs apt-get when a package is missing.
deps-debian:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

deps-go:
	@mkdir -p $(TOOLS)/bin $(TOOLS)/cni
	@test -x $(TOOLS)/bin/staticcheck -a -f $(TOOLS)/bin/.staticcheck-$(STATICCHECK_VERSION) || { \
	  GOBIN=$(TOOLS)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) && \
	  touch $(TOOLS)/bin/.staticcheck-$(STATICCHECK_VERSION); }
	@test -f $(TOOLS)/cni/.version-$(CNI_PLUGINS_VERSION) || { \
	  GOBIN=$(TOOLS)/cni $(GO) install $(foreach p,$(CNI_PLUGINS),github.com/containernetworking/plugins/plugins/$(p)@$(CNI_PLUGINS_VERSION)) && \
	  touch $(TOOLS)/cni/.version-$(CNI_PLUGINS_VERSION); }

test: deps build
	$(GO) vet ./...
	$(TOOLS)/bin/staticcheck ./...
	@mkdir -p $(TEST_OUTPUT)
	@ip netns list | grep -oE '^dewar[^ ]*' | sort > $(TEST_OUTPUT)/netns-before || true
	DEWAR_REQUIRE_INTEGRATION=1 DEWAR_BIN_DIR=$(CURDIR)/bin $(GO) test -race -count=1 -timeout 20m -artifacts -outputdir $(TEST_OUTPUT) ./...
	FUZZTIME_FuzzServeCheckpoint=$(FUZZTIME_TEST_OBSERVER) $(MAKE) fuzz FUZZTIME=$(FUZZTIME_TEST)
	@# Namespaces that were there before belong to someone else (another
	@# checkout's tests on a shared machine); on a fresh CI machine there are none.
	@leftover=$$(ip netns list | grep -oE '^dewar[^ ]*' | sort | comm -13 $(TEST_OUTPUT)/netns-before - || true); \
	  if [ -n "$$leftover" ]; then echo "tests left network namespaces behind: $$leftover"; exit 1; fi

# The end-to-end tests against a real Mesos 1.12 master and agent
# (e2e/mesos): the demo's job through the real master and the agent's
# network/cni isolator, and an agent restart under a running task. Mesos is a
# test dependency in /opt/mesos (see deps-mesos).
MESOS_HOME := /opt/mesos
test-mesos:
	@test -x $(MESOS_HOME)/sbin/mesos-agent -a -x $(MESOS_HOME)/sbin/mesos-master || { \
	  echo "test-mesos: $(MESOS_HOME)/sbin/mesos-agent is missing. Install a real Mesos 1.12 with" >&2; \
	  echo "  make deps MESOS_INSTALL=path/to/installer   (as root)" >&2; \
	  echo "then run make test-mesos again." >&2; exit 1; }
	@$(MAKE) --no-print-directory deps build
	DEWAR_MESOS_HOME=$(MESOS_HOME) DEWAR_REQUIRE_INTEGRATION=1 DEWAR_BIN_DIR=$(CURDIR)/bin $(GO) test -race -count=1 -timeout 10m ./e2e/mesos/...

# The reliability suite (issue 13, e2e/reliability) at full scale: a
# three-node ZooKeeper ensemble on loopback, one announcer session per
# simulated task, 1,000 of them in the rejoin storm; 20 restarts of the
# fake agent and 5 of the real mesos-agent under running tasks; an address
# flap under CNI; a full sandbox; the security row. Prints the table of
# figures; fails when a scenario misses its threshold. No -race here: the
# figures are the product's, not the race detector's. `make test` runs the
# short version of the same scenarios (without the real mesos-agent, which
# e2e/mesos restarts once).
RELIABILITY_TABLE := $(CURDIR)/bin/reliability.md
reliability: deps build
	@rm -f $(RELIABILITY_TABLE)
	@rc=0; DEWAR_RELIABILITY_FULL=1 DEWAR_RELIABILITY_TABLE=$(RELIABILITY_TABLE) DEWAR_REQUIRE_INTEGRATION=1 DEWAR_BIN_DIR=$(CURDIR)/bin \
	  $(GO) test -count=1 -timeout 15m -run '^TestReliability$$' ./e2e/reliability/ || rc=$$?; \
	  echo; cat $(RELIABILITY_TABLE) 2>/dev/null || echo "no table: the suite stopped early (see above)"; exit $$rc

# Every fuzz target for FUZZTIME each, then a table (target, executions,
# new corpus entries, time, result); run longer with FUZZTIME=10m (any
# -fuzztime value; FUZZTIME_<target>=... for one target). `make test` gives
# each target FUZZTIME_TEST, the observer's (a directory scan and six page
# renders per input, about 50 inputs a second on 2 cores) fewer; about
# four minutes for all eleven. `go test` alone runs the committed
# seeds (testdata/fuzz/<target>/). The defaults are counts of executions,
# not durations: with a duration, `go test -fuzz` can end with a spurious
# "context deadline exceeded" failure when the time runs out mid-step.
FUZZTIME ?= 100000x
FUZZTIME_TEST ?= 20000x
FUZZTIME_TEST_OBSERVER ?= 5000x
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# Every benchmark once (-benchtime 1x: each repeats its own samples after a
# warm-up and reports p50/p99 beside a floor measured in the same run), one
# package at a time (-p 1) so that they do not measure each other; then the
# table of figures (internal/benchtab) and the machine it ran on.
BENCH_TABLE := $(CURDIR)/bin/bench.md
BENCH_HEADER := | figure | samples | p50 | p99 | floor (same run) | floor p50 | floor p99 | ratio (p50) |\n|---|---|---|---|---|---|---|---|\n
bench: deps build
	@rm -f $(BENCH_TABLE)
	@rc=0; DEWAR_BENCH_TABLE=$(BENCH_TABLE) DEWAR_REQUIRE_INTEGRATION=1 DEWAR_BIN_DIR=$(CURDIR)/bin \
	  $(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m ./... || rc=$$?; \
	  echo; echo "machine: $$(nproc) cores, $$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $$(awk '/MemTotal/ {printf "%.0f GiB", $$2/1048576}' /proc/meminfo), load average $$(cut -d' ' -f1-3 /proc/loadavg), $$(uname -r)"; \
	  echo; printf '$(BENCH_HEADER)'; cat $(BENCH_TABLE) 2>/dev/null; exit $$rc

demo: deps build
	./scripts/demo.sh

demo-stop:
	./scripts/demo.sh stop

clean:
	rm -rf bin
