# eddy: `make` builds build/eddy; `make run` serves www/ on :7878;
# `make test` builds and runs every test.  See README.md.

CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CPPFLAGS_EDDY := -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -MMD -MP

# llhttp: always Debian's node-llhttp sources, compiled in with strict mode,
# so every build parses alike.  Strictness is fixed when llhttp.c is
# compiled (LLHTTP_STRICT_MODE defaults to 0), so a system libllhttp would
# parse with whatever its builder chose.
LLHTTP_SRC    ?= /usr/share/llhttp
LLHTTP_CFLAGS := -I/usr/share/include/llhttp -DLLHTTP_STRICT_MODE=1
LLHTTP_OBJS   := $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o

LIB_SRCS := $(wildcard src/rt/*.c src/core/*.c src/http/*.c src/http2/*.c src/files/*.c src/tls/*.c src/acme/*.c src/proxy/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
PROG_SRCS := $(wildcard src/server/*.c)
PROG_OBJS := $(PROG_SRCS:%.c=$(BUILD)/%.o)
# Two archives of the same objects.  The internal one keeps every symbol
# global; the unit tests link it, since they call internal functions.  The
# public one holds a single relocatable object in which only eddy_* stay
# global (everything else, llhttp included, is made local), so nothing of
# eddy's inside can clash with an embedder's symbols; the program and the
# examples link it, which proves eddy.h suffices.
LIB := $(BUILD)/libeddy.a
LIB_INTERNAL := $(BUILD)/libeddy-internal.a
NM ?= nm
OBJCOPY ?= objcopy
# Debian's interpreter, where make test installs python3-h11.
PYTHON ?= /usr/bin/python3
LIBS := -lyaml -lnghttp2 -ljansson -lcurl -lssl -lcrypto -luring -lm -lpthread

EXAMPLES := $(BUILD)/examples/seed_server $(BUILD)/examples/sse_clock $(BUILD)/examples/upload_sink

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)

.PHONY: all build-all run test unit unit-san integration integration-san deps deps-test bench bench-proxy clean
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

$(LIB_INTERNAL): $(LIB_OBJS) $(LLHTTP_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libeddy.o: $(LIB_OBJS) $(LLHTTP_OBJS)
	$(CC) -r -nostdlib -o $@.tmp $^
	$(OBJCOPY) --wildcard --keep-global-symbol='eddy_*' $@.tmp $@
	@rm -f $@.tmp

$(LIB): $(BUILD)/libeddy.o
	@rm -f $@
	ar rcs $@ $<

$(BUILD)/eddy: $(PROG_OBJS) $(LIB)
	$(CC) $(CFLAGS) -o $@ $(PROG_OBJS) $(LIB) $(LIBS)

$(EXAMPLES): %: %.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LIBS)

$(BUILD)/unit/%: $(BUILD)/tests/unit/%.o $(BUILD)/tests/unit/harness.o $(LIB_INTERNAL) $(filter-out $(BUILD)/src/server/main.o,$(PROG_OBJS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter-out $(LIB_INTERNAL),$^) $(LIB_INTERNAL) $(LIBS) -lcmocka

run: all
	exec $(BUILD)/eddy --root www --listen 127.0.0.1:7878 --delay /sleep=5

# First: the public archive defines eddy_* symbols only, and all of eddy.h.
unit: $(UNIT_BINS) $(LIB)
	@echo "== tests/unit/check_symbols.sh $(LIB)"
	@NM=$(NM) tests/unit/check_symbols.sh $(LIB) include/eddy.h
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer
# (with leak detection), in a build tree of their own.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
unit-san:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/san CFLAGS="$(SAN_FLAGS)" \
	    $(UNIT_BINS:$(BUILD)/%=$(BUILD)/san/%)
	@set -e; for t in $(UNIT_BINS:$(BUILD)/%=$(BUILD)/san/%); do echo "== $$t"; \
	    ASAN_OPTIONS=detect_leaks=1 $$t; done

# tls.py's testssl test probes the TLS configuration, which is the same on
# both I/O paths, and takes a minute or two: it runs on the first pass only.
integration: build-all
	$(PYTHON) tests/integration/run.py --eddy $(BUILD)/eddy --example $(BUILD)/examples/seed_server \
	    --example-sse $(BUILD)/examples/sse_clock --example-upload $(BUILD)/examples/upload_sink
	$(PYTHON) tests/conformance/run_table.py --eddy $(BUILD)/eddy
	$(PYTHON) tests/integration/files.py --eddy $(BUILD)/eddy
	$(PYTHON) tests/integration/hostile.py --eddy $(BUILD)/eddy
	$(PYTHON) tests/integration/tls.py --eddy $(BUILD)/eddy
	$(PYTHON) tests/integration/h2.py --eddy $(BUILD)/eddy --example-upload $(BUILD)/examples/upload_sink
	$(PYTHON) tests/integration/acme.py --eddy $(BUILD)/eddy
	$(PYTHON) tests/integration/config.py --eddy $(BUILD)/eddy
	$(PYTHON) tests/integration/proxy.py --eddy $(BUILD)/eddy
	@echo "== the same I/O paths on epoll alone (--no-io-uring)"
	$(PYTHON) tests/integration/run.py --eddy $(BUILD)/eddy --example $(BUILD)/examples/seed_server \
	    --example-sse $(BUILD)/examples/sse_clock --example-upload $(BUILD)/examples/upload_sink \
	    --eddy-arg=--no-io-uring
	$(PYTHON) tests/integration/hostile.py --eddy $(BUILD)/eddy --eddy-arg=--no-io-uring
	$(PYTHON) tests/integration/tls.py --eddy $(BUILD)/eddy --eddy-arg=--no-io-uring --skip testssl
	$(PYTHON) tests/integration/h2.py --eddy $(BUILD)/eddy --example-upload $(BUILD)/examples/upload_sink \
	    --eddy-arg=--no-io-uring
	$(PYTHON) tests/integration/proxy.py --eddy $(BUILD)/eddy --eddy-arg=--no-io-uring

# The integration suites again against eddy built with ASan+UBSan: a
# leak or memory error on any path they drive fails its test (leaks show
# as a non-zero exit when eddy stops).
integration-san:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/san CFLAGS="$(SAN_FLAGS)" build-all
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/run.py --eddy $(BUILD)/san/eddy \
	    --example $(BUILD)/san/examples/seed_server --example-sse $(BUILD)/san/examples/sse_clock \
	    --example-upload $(BUILD)/san/examples/upload_sink
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/conformance/run_table.py --eddy $(BUILD)/san/eddy
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/files.py --eddy $(BUILD)/san/eddy
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/tls.py --eddy $(BUILD)/san/eddy --quick
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/h2.py --eddy $(BUILD)/san/eddy \
	    --example-upload $(BUILD)/san/examples/upload_sink
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/acme.py --eddy $(BUILD)/san/eddy
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/config.py --eddy $(BUILD)/san/eddy
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/proxy.py --eddy $(BUILD)/san/eddy

test: deps-test
	@$(MAKE) --no-print-directory build-all unit unit-san integration integration-san

# eddy beside nginx, h2o and lighttpd, pinned; then eddy's reverse proxy
# beside nginx's and HAProxy's (bench/proxy.sh); writes bench/results/.
bench: all
	bench/run.sh
	bench/proxy.sh

# The proxy scenarios alone.
bench-proxy: all
	bench/proxy.sh

clean:
	rm -rf $(BUILD)

# libFuzzer targets: make fuzz FUZZ_SECONDS=N
-include fuzz/fuzz.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
