#!/usr/bin/env bash
# libFuzzer on the version codecs (src/cluster/fuzz_dvv.c: record meta,
# clock-only meta, client contexts) for 15 seconds (FUZZ_SECONDS to change)
# on a copy of tests/cluster/corpus_dvv; tests/fuzz.bash says how it fails
# and skips. The binary's rule is in src/cluster/dvv.mk.
set -u
source "$(dirname "$0")/../fuzz.bash"
fuzz_run fuzz_dvv tests/cluster/corpus_dvv "${FUZZ_SECONDS:-15}"
