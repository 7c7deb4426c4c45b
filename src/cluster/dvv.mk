# dvv.mk - the libFuzzer target for the version codecs (src/cluster/fuzz_dvv.c),
# included by the Makefile. Like fuzz_resp: build-fuzz/fuzz_dvv with clang,
# ASan and UBSan; `make fuzz` (or `make fuzz-dvv` alone) runs it FUZZ_SECONDS
# on a copy of the seed corpus tests/cluster/corpus_dvv, a crash input is
# saved as build-fuzz/dvv-crash-*. tests/cluster/fuzz_dvv.sh builds the same
# binary for the test suite. The corpus is written by
# `build/tests/cluster/test_dvv corpus tests/cluster/corpus_dvv`.
FUZZ_DVV_SRC := src/cluster/fuzz_dvv.c src/cluster/dvv.c src/cluster/counter.c src/base/hash.c

build-fuzz/fuzz_dvv: $(FUZZ_DVV_SRC) src/cluster/dvv.h src/cluster/counter.h src/base/hash.h src/base/assert.h src/base/le.h \
		src/base/error.h src/base/constants.h
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $(FUZZ_DVV_SRC) -lxxhash -lsodium

.PHONY: fuzz-dvv
fuzz-dvv: build-fuzz/fuzz_dvv
	rm -rf build-fuzz/corpus_dvv && mkdir -p build-fuzz/corpus_dvv && cp tests/cluster/corpus_dvv/* build-fuzz/corpus_dvv/
	build-fuzz/fuzz_dvv -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=build-fuzz/dvv- build-fuzz/corpus_dvv

fuzz: fuzz-dvv
