# libFuzzer target for the internode codec and session (src/cluster/fuzz_msg.c):
# build-fuzz/fuzz_msg with clang, ASan and UBSan. `make fuzz` runs it
# FUZZ_SECONDS on a copy of tests/cluster/corpus_msg (crash inputs saved as
# build-fuzz/crash-*); tests/cluster/fuzz_msg.sh runs it briefly in the suite.
# FUZZ_MSG_WRITE_SEEDS=DIR build-fuzz/fuzz_msg rewrites the seed corpus.
FUZZ_MSG_SRC := src/cluster/fuzz_msg.c src/cluster/msg.c src/cluster/wire.c src/base/hash.c
FUZZ_MSG_HDR := src/cluster/msg.h src/cluster/wire.h src/cluster/dvv.h src/cluster/ring.h \
	src/base/hash.h src/base/le.h src/base/assert.h src/base/constants.h

build-fuzz/fuzz_msg: $(FUZZ_MSG_SRC) $(FUZZ_MSG_HDR)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $(FUZZ_MSG_SRC) -lsodium

.PHONY: fuzz-msg
fuzz-msg: build-fuzz/fuzz_msg
	rm -rf build-fuzz/corpus_msg && mkdir -p build-fuzz/corpus_msg && cp tests/cluster/corpus_msg/* build-fuzz/corpus_msg/
	build-fuzz/fuzz_msg -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=build-fuzz/ build-fuzz/corpus_msg

fuzz: fuzz-msg
