# dynvme build. `make` builds build/dynvme; `make test` runs every CI test;
# `make check` runs the tests under ASan+UBSan and TSan.
CC ?= cc
BUILD ?= build
CFLAGS_BASE := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-unused-parameter -Isrc -g
OPT ?= -O2
CFLAGS += $(CFLAGS_BASE) $(OPT) $(SAN)
LDLIBS := -luring -lxxhash -lpthread -lm

LIB_SRC := $(filter-out src/cli/main.c,$(shell find src -name '*.c' -not -path 'src/*/fuzz_*'))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(shell find tests -name 'test_*.c')
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)
TEST_SUPPORT := $(filter-out $(TEST_SRC),$(shell find tests -name '*.c'))
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/%.o)

.PHONY: all test check clean bench
all: $(BUILD)/dynvme $(TEST_BIN)

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

test: all
	tests/run.sh $(BUILD)

# Sanitizer builds: each in its own build directory, whole suite.
check:
	$(MAKE) BUILD=build-asan CC=clang SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" OPT=-O1 test
	$(MAKE) BUILD=build-tsan CC=clang SAN="-fsanitize=thread" OPT=-O1 test

bench: $(BUILD)/dynvme
	bench/engine.sh

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(wildcard src/*/*.mk)
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
