# libFuzzer targets for eddy, included by the main Makefile.
#
#   make fuzz [FUZZ_SECONDS=N]  build every target, run each N s (default 10)
#                               on a copy of its corpus; fails on any crash,
#                               leak, sanitizer report or timeout
#   make fuzz-build             build them only (build/fuzz/fuzz_*)
#   make fuzz-clean             remove build/fuzz (grown corpora included)
#
# One target by hand:  build/fuzz/fuzz_conn build/fuzz/corpus/fuzz_conn
# Reproduce a crash:   build/fuzz/fuzz_conn build/fuzz/artifacts/fuzz_conn/crash-...
#
# Everything is built by clang with libFuzzer, ASan and UBSan into
# build/fuzz/, sharing no object with the other builds.  Clang and its
# fuzzer runtime are installed by `scripts/deps.sh clang`: by apt-get as
# root, else the command to run is printed and make fails.

FUZZ_SECONDS ?= 10
FUZZ_CC ?= clang
FUZZ_DIR := $(or $(BUILD),build)/fuzz
FUZZ_TARGETS := fuzz_request fuzz_conn fuzz_api fuzz_path fuzz_fields fuzz_h2 fuzz_config fuzz_proxy
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)

FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1
# llhttp as the main Makefile builds it: Debian's sources, strict mode.
FUZZ_CPPFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(LLHTTP_CFLAGS)
FUZZ_WARN := -Wall -Wextra -Wno-unused-parameter
FUZZ_LLHTTP_SRC := $(LLHTTP_SRC)

# With the program's configuration loader and flags (fuzz_config): in the
# archive, they are linked only into the targets that call them.
FUZZ_PROG_SRCS := src/server/config.c src/server/cli.c src/server/delay.c
FUZZ_LIB_SRCS := $(LIB_SRCS) $(FUZZ_PROG_SRCS)
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LLHTTP_OBJS := $(FUZZ_DIR)/obj/llhttp/api.o $(FUZZ_DIR)/obj/llhttp/http.o \
    $(FUZZ_DIR)/obj/llhttp/llhttp.o
FUZZ_TARGET_OBJS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/obj/fuzz/%.o)
# An archive, so each target links only the objects it uses.
FUZZ_LIB := $(FUZZ_DIR)/libeddy-fuzz.a

# Links a do-nothing fuzzer: proves clang, libFuzzer and the sanitizer
# runtimes are all there.
FUZZ_PROBE = mkdir -p $(FUZZ_DIR) && command -v $(FUZZ_CC) >/dev/null 2>&1 && \
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' | \
    $(FUZZ_CC) $(FUZZ_SAN) -x c - -o $(FUZZ_DIR)/.probe >/dev/null 2>&1 && rm -f $(FUZZ_DIR)/.probe

.PHONY: fuzz fuzz-build fuzz-deps fuzz-bins fuzz-run fuzz-clean

# As for `make all`: install first, then build in a fresh make, which sees
# the files the install brought (/usr/share/llhttp).
fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-run

fuzz-build: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-bins

# The packages only when the probe fails: another FUZZ_CC may need none.
fuzz-deps:
	@scripts/deps.sh build
	@if ! { $(FUZZ_PROBE); }; then \
	    scripts/deps.sh clang || exit 1; \
	    $(FUZZ_PROBE) || { echo "fuzz: $(FUZZ_CC) still cannot link a libFuzzer target" >&2; exit 1; }; \
	fi

fuzz-bins: $(FUZZ_BINS)

fuzz-run: fuzz-bins
	@sh fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf $(FUZZ_DIR)

# Static pattern rules: they win over the main Makefile's $(BUILD)/%.o rule.
$(FUZZ_LIB_OBJS): $(FUZZ_DIR)/obj/%.o: %.c fuzz/fuzz.mk
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_SAN) $(FUZZ_WARN) -MMD -MP -c $< -o $@

# llhttp is generated code: instrumented too (its states are coverage), but
# compiled without our warnings.
$(FUZZ_LLHTTP_OBJS): $(FUZZ_DIR)/obj/llhttp/%.o: $(FUZZ_LLHTTP_SRC)/%.c fuzz/fuzz.mk
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_SAN) -w -c $< -o $@

$(FUZZ_TARGET_OBJS): $(FUZZ_DIR)/obj/fuzz/%.o: fuzz/%.c fuzz/fuzz.mk
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_SAN) $(FUZZ_WARN) -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJS) $(FUZZ_LLHTTP_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BINS): $(FUZZ_DIR)/%: $(FUZZ_DIR)/obj/fuzz/%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_SAN) -o $@ $< $(FUZZ_LIB) $(LIBS)
