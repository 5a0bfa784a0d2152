# eddy: `make` builds build/eddy; `make run` serves www/ on :7878;
# `make test` builds and runs every test.  See README.md.

CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CPPFLAGS_EDDY := -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -MMD -MP

# llhttp: a system library found by pkg-config, else Debian's node-llhttp
# sources compiled in.
LLHTTP_PC := $(shell pkg-config --exists libllhttp 2>/dev/null && echo yes)
ifeq ($(LLHTTP_PC),yes)
  LLHTTP_CFLAGS := $(shell pkg-config --cflags libllhttp)
  LLHTTP_LIBS   := $(shell pkg-config --libs libllhttp)
  LLHTTP_OBJS   :=
else
  LLHTTP_SRC    ?= /usr/share/llhttp
  LLHTTP_CFLAGS := -I/usr/share/include/llhttp -DLLHTTP_STRICT_MODE=1
  LLHTTP_LIBS   :=
  LLHTTP_OBJS   := $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o
endif

LIB_SRCS := $(wildcard src/rt/*.c src/core/*.c src/http/*.c src/files/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
PROG_SRCS := $(wildcard src/server/*.c)
PROG_OBJS := $(PROG_SRCS:%.c=$(BUILD)/%.o)
LIB := $(BUILD)/libeddy.a
# Debian's interpreter, where make test installs python3-h11.
PYTHON ?= /usr/bin/python3
LIBS := $(LLHTTP_LIBS) -luring -lm -lpthread

EXAMPLES := $(BUILD)/examples/seed_server $(BUILD)/examples/sse_clock

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)

.PHONY: all build-all run test unit unit-san integration integration-san deps deps-test bench clean
# Keep object files make considers intermediate (unit test objects).
.SECONDARY:
# Public targets install missing packages first, then build in a fresh make:
# make caches directory listings, so sources that deps just installed
# (/usr/share/llhttp) must be looked for by a make started afterwards.
all: deps
	@$(MAKE) --no-print-directory build-all

build-all: $(BUILD)/eddy $(EXAMPLES)

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

$(BUILD)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_EDDY) $(LLHTTP_CFLAGS) $(CFLAGS) $(WARN) -c $< -o $@

# llhttp is generated code: built with its own flags, not ours.
$(BUILD)/llhttp/%.o: $(LLHTTP_SRC)/%.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(LLHTTP_CFLAGS) $(CFLAGS) -w -c $< -o $@

$(LIB): $(LIB_OBJS) $(LLHTTP_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/eddy: $(PROG_OBJS) $(LIB)
	$(CC) $(CFLAGS) -o $@ $(PROG_OBJS) $(LIB) $(LIBS)

$(EXAMPLES): %: %.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LIBS)

$(BUILD)/unit/%: $(BUILD)/tests/unit/%.o $(BUILD)/tests/unit/harness.o $(LIB) $(filter-out $(BUILD)/src/server/main.o,$(PROG_OBJS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter-out $(LIB),$^) $(LIB) $(LIBS) -lcmocka

run: all
	exec $(BUILD)/eddy --root www --listen 127.0.0.1:7878 --delay /sleep=5

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer
# (with leak detection), in a build tree of their own.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
unit-san:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/san CFLAGS="$(SAN_FLAGS)" \
	    $(UNIT_BINS:$(BUILD)/%=$(BUILD)/san/%)
	@set -e; for t in $(UNIT_BINS:$(BUILD)/%=$(BUILD)/san/%); do echo "== $$t"; \
	    ASAN_OPTIONS=detect_leaks=1 $$t; done

integration: build-all
	$(PYTHON) tests/integration/run.py --eddy $(BUILD)/eddy --example $(BUILD)/examples/seed_server \
	    --example-sse $(BUILD)/examples/sse_clock
	$(PYTHON) tests/conformance/run_table.py --eddy $(BUILD)/eddy
	$(PYTHON) tests/integration/files.py --eddy $(BUILD)/eddy
	$(PYTHON) tests/integration/hostile.py --eddy $(BUILD)/eddy
	@echo "== the same I/O paths on epoll alone (--no-io-uring)"
	$(PYTHON) tests/integration/run.py --eddy $(BUILD)/eddy --example $(BUILD)/examples/seed_server \
	    --example-sse $(BUILD)/examples/sse_clock --eddy-arg=--no-io-uring
	$(PYTHON) tests/integration/hostile.py --eddy $(BUILD)/eddy --eddy-arg=--no-io-uring

# The integration suites again against eddy built with ASan+UBSan: a
# leak or memory error on any path they drive fails its test (leaks show
# as a non-zero exit when eddy stops).
integration-san:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/san CFLAGS="$(SAN_FLAGS)" build-all
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/run.py --eddy $(BUILD)/san/eddy \
	    --example $(BUILD)/san/examples/seed_server --example-sse $(BUILD)/san/examples/sse_clock
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/conformance/run_table.py --eddy $(BUILD)/san/eddy
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/files.py --eddy $(BUILD)/san/eddy

test: deps-test
	@$(MAKE) --no-print-directory build-all unit unit-san integration integration-san

# eddy beside nginx, h2o and lighttpd, pinned; writes bench/results/.
bench: all
	bench/run.sh

clean:
	rm -rf $(BUILD)

# libFuzzer targets: make fuzz FUZZ_SECONDS=N
-include fuzz/fuzz.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
