# dynvme build. `make` builds build/dynvme; `make test` runs every CI test;
# `make check` runs the tests under ASan+UBSan and TSan.
CC ?= cc
BUILD ?= build
CFLAGS_BASE := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-unused-parameter -Isrc -g
OPT ?= -O2
CFLAGS += $(CFLAGS_BASE) $(OPT) $(SAN)
LDLIBS := -luring -lxxhash -lsodium -lpthread -lm

LIB_SRC := $(filter-out src/cli/main.c,$(shell find src -name '*.c' -not -path 'src/*/fuzz_*'))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(shell find tests -name 'test_*.c')
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)
TEST_SUPPORT := $(filter-out $(TEST_SRC),$(shell find tests -name '*.c'))
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/%.o)

.PHONY: all test check check-build clean bench deps run fuzz fuzz-resp fuzz-cmd zns sim sim-store sim-cluster
# Object files of test programs are kept (not intermediates), so a second
# `make` rebuilds nothing.
.SECONDARY:
all: $(BUILD)/dynvme $(TEST_BIN)

# Installs missing Debian packages (scripts/deps.sh); the README's commands
# go through it so a fresh machine needs nothing else.
deps:
	@scripts/deps.sh build

# The main job: a local 3-node cluster (dynvme cluster up) with its configs,
# secret and data in ./data/cluster (created on first start, reused after):
# RESP on 127.0.0.1:7000-7002, HTTP 8000-8002, internode 17000-17002.
# Ctrl-C (SIGINT) stops every node cleanly. ARGS passes more flags
# (ARGS="--nodes 5", "--base-port 7100"); `build/dynvme serve` runs one node.
run: deps
	$(MAKE) $(BUILD)/dynvme
	$(BUILD)/dynvme cluster up $(ARGS)

$(BUILD)/tests/%.o: CFLAGS += -Itests

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libdynvme.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/dynvme: $(BUILD)/src/cli/main.o $(BUILD)/libdynvme.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_SUPPORT_OBJ) $(BUILD)/libdynvme.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Builds with one job per core (CI has 2); the tests run TEST_JOBS at a time
# (default one per core; tests/run.sh: DV_TEST_JOBS): most of them wait on
# sleeps, timeouts, fsync or a server (the plain suite used 370 s of CPU in
# 661 s one at a time), so two at once on 2 cores take about 65% of the time
# (430 s in .ci/run on a machine loaded by other work, load average 4-5; 341 s idle).
TEST_JOBS ?= $$(nproc)
test: deps
	$(MAKE) -j$$(nproc) all
	DV_TEST_JOBS=$(TEST_JOBS) tests/run.sh $(BUILD)

# tests/zns alone: a QEMU guest (TCG) with an emulated NVMe ZNS namespace and a
# conventional one, from Debian packages (installed when missing); `make test`
# runs it too. By hand: tests/zns/guest.bash --help.
zns: deps
	$(MAKE) $(BUILD)/dynvme
	DV_BUILD=$(BUILD) tests/zns/run.sh

# Sanitizer builds: each in its own build directory. Fewer crash cycles under
# sanitizers (the plain build runs 100). Both run every test except the fuzz
# scripts (they build their own ASan+UBSan fuzzers, the same binaries in every
# build: the plain `make test` runs them), tests/zns (its guest runs the
# plain build's binaries) and Redis's own test suite (redis_suite.sh: a
# reply-for-reply comparison that takes minutes; compat.sh sends the same
# commands under the sanitizers). TSan runs the tests where more than one thread
# runs (the index, the devices, the server engine, the server and cluster
# processes), not the single-threaded storage engine's long fault, model, GC,
# crash and damage tests, nor test_node, test_memo (each one thread: strace -f
# counts no CLONE_THREAD in them, recovery's merge helper thread starts only
# for 20000 records and more), nor the simulator (one thread by design):
# ASan+UBSan runs those. (TSan took 31 s on test_node, 20 s on test_crash,
# 16 s on test_memo and 12 s on test_damaged, with nothing it could report.)
SAN_EXCLUDE := cluster/fuzz_dvv.sh cluster/fuzz_msg.sh resp/fuzz_resp.sh zns/run.sh server/redis_suite.sh
TSAN_EXCLUDE := $(SAN_EXCLUDE) storage/test_faults storage/test_model storage/test_regress storage/test_store \
	storage/test_zoned storage/test_flush sim/test_sim blockdev.sh storage/test_crash storage/test_damaged \
	storage/test_memo cluster/test_node
ASAN_MAKE := $(MAKE) BUILD=build-asan CC=clang SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" OPT=-O1
TSAN_MAKE := $(MAKE) BUILD=build-tsan CC=clang SAN="-fsanitize=thread" OPT=-O1
check: deps
	DV_CRASH_CYCLES=15 DV_TEST_QUICK=1 DV_TEST_EXCLUDE="$(SAN_EXCLUDE)" \
		DV_TEST_EXCLUDE_WHY="not in the sanitizer builds (Makefile: check)" \
		$(ASAN_MAKE) test
	DV_CRASH_CYCLES=15 DV_TEST_QUICK=1 DV_TEST_EXCLUDE="$(TSAN_EXCLUDE)" \
		DV_TEST_EXCLUDE_WHY="single-threaded or not in the sanitizer builds: ASan+UBSan and the plain build run it (Makefile: check)" \
		$(TSAN_MAKE) test
# check-build: the two sanitizer builds of `make check`, nothing run (.ci/run
# builds them at low priority while `make test` runs the plain suite).
check-build: deps
	$(ASAN_MAKE) -j$$(nproc) all
	$(TSAN_MAKE) -j$$(nproc) all

# Long seeded simulation runs, not in CI: `make sim` runs every simulator
# listed after sim: (one sim-<name> target each; `make -k sim` goes on past
# a failing one). SIM_SEEDS seeds from SIM_START (a failing seed prints the
# command that replays it). sim-store: the store model test
# (tests/storage/test_model.c; CI runs its first 800 seeds and 200 of them
# with faults in recovery), both ways. sim-cluster:
# the deterministic cluster simulator (tests/sim/test_sim.c; CI runs its
# first 400 seeds), each fault mix in turn over two processes, then its
# determinism and mutation checks.
SIM_SEEDS ?= 20000
SIM_START ?= 1
sim: sim-store sim-cluster

sim-store: $(BUILD)/tests/storage/test_model
	DV_MODEL_SEEDS=$(SIM_SEEDS) DV_MODEL_START=$(SIM_START) nice -n 10 $(BUILD)/tests/storage/test_model
	DV_MODEL_SEEDS=$(SIM_SEEDS) DV_MODEL_START=$(SIM_START) DV_MODEL_RECOVERY_FAULTS=1 nice -n 10 $(BUILD)/tests/storage/test_model

sim-cluster: $(BUILD)/tests/sim/test_sim
	nice -n 10 $(BUILD)/tests/sim/test_sim --seeds $(SIM_START)..$$(($(SIM_START) + $(SIM_SEEDS) - 1)) --jobs 2 --checks -q

bench: $(BUILD)/dynvme
	@scripts/deps.sh bench
	bench/engine.sh
	bench/server.sh

# libFuzzer target for the RESP parser and encoders (src/resp/fuzz_resp.c):
# build-fuzz/fuzz_resp with clang, ASan and UBSan, run FUZZ_SECONDS (default
# 600) on a copy of the seed corpus tests/resp/corpus; a crash input is saved
# as build-fuzz/crash-*. tests/resp/fuzz_resp.sh builds the same binary.
FUZZ_SECONDS ?= 600
FUZZ_CFLAGS := $(CFLAGS_BASE) -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

build-fuzz/fuzz_resp: src/resp/fuzz_resp.c src/resp/resp.c src/resp/resp.h src/base/assert.h
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ src/resp/fuzz_resp.c src/resp/resp.c

#
# fuzz-cmd: tests/server/fuzz_cmd.py, random command sequences with edge
# arguments against dynvme and redis-server 7 (scripts/deps.sh test installs
# it), reply for reply: its regression cases, then FUZZ_CMD_SEEDS seeds from
# FUZZ_CMD_START (each cut at FUZZ_SECONDS); then dynvme alone (--crash) in
# the ASan+UBSan build (build-asan, as `make check` builds it) for as many
# seeds. A failing seed prints the command that replays it.
# tests/server/fuzz_cmd.sh runs a short version in `make test`.
# `make fuzz` runs every fuzz-* target (src/*/*.mk add theirs).
FUZZ_CMD_SEEDS ?= 3000
FUZZ_CMD_START ?= 1
fuzz: fuzz-resp fuzz-cmd

fuzz-resp: build-fuzz/fuzz_resp
	rm -rf build-fuzz/corpus && mkdir -p build-fuzz/corpus && cp tests/resp/corpus/* build-fuzz/corpus/
	build-fuzz/fuzz_resp -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=build-fuzz/ build-fuzz/corpus

fuzz-cmd: deps
	$(MAKE) $(BUILD)/dynvme
	nice -n 10 tests/server/fuzz_cmd.py --build $(BUILD) --regress \
		--seeds $(FUZZ_CMD_START)..$$(($(FUZZ_CMD_START) + $(FUZZ_CMD_SEEDS) - 1)) --time-limit $(FUZZ_SECONDS)
	$(ASAN_MAKE) build-asan/dynvme
	nice -n 10 tests/server/fuzz_cmd.py --build build-asan --crash \
		--seeds $(FUZZ_CMD_START)..$$(($(FUZZ_CMD_START) + $(FUZZ_CMD_SEEDS) - 1)) --time-limit $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(wildcard src/*/*.mk)
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
