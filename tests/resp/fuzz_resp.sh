#!/usr/bin/env bash
# libFuzzer on the RESP parser and encoders (src/resp/fuzz_resp.c) for 20
# seconds (FUZZ_SECONDS to change) on a copy of tests/resp/corpus. Fails if
# the fuzzer finds a crash, a sanitizer report or a broken invariant; the
# input is printed and kept in build-fuzz/ (tests/fuzz.bash). The binary
# comes from make's build-fuzz/fuzz_resp rule with clang whatever DV_BUILD is
# (plain, ASan or TSan suite): it carries its own sanitizers. Exit 77 without
# libFuzzer.
set -u
source "$(dirname "$0")/../fuzz.bash"
fuzz_run fuzz_resp tests/resp/corpus "${FUZZ_SECONDS:-20}"
