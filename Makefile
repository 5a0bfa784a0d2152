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

LIB_SRCS := $(wildcard src/rt/*.c src/core/*.c src/http/*.c src/http2/*.c src/files/*.c src/tls/*.c src/acme/*.c src/proxy/*.c src/metrics/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/status_assets.o

# The status page's files, built into the binary: the dashboard, and
# Debian's libjs-dygraphs, which draws its charts.
DYGRAPHS ?= /usr/share/javascript/dygraphs
STATUS_ASSETS := $(wildcard src/metrics/assets/*) $(DYGRAPHS)/dygraph.min.js $(DYGRAPHS)/dygraph.min.css
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
.PHONY: install install-files uninstall deb test-package
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

$(BUILD)/gen/status_assets.c: $(STATUS_ASSETS) scripts/embed-assets.sh Makefile
	@mkdir -p $(dir $@)
	scripts/embed-assets.sh $@ $(STATUS_ASSETS)

$(BUILD)/gen/status_assets.o: $(BUILD)/gen/status_assets.c
	$(CC) $(CPPFLAGS_EDDY) $(CFLAGS) $(WARN) -c $< -o $@

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

# The program alone talks to systemd (the library never does).
PROG_LIBS := -lsystemd

$(BUILD)/eddy: $(PROG_OBJS) $(LIB)
	$(CC) $(CFLAGS) -o $@ $(PROG_OBJS) $(LIB) $(LIBS) $(PROG_LIBS)

$(EXAMPLES): %: %.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LIBS)

$(BUILD)/unit/%: $(BUILD)/tests/unit/%.o $(BUILD)/tests/unit/harness.o $(LIB_INTERNAL) $(filter-out $(BUILD)/src/server/main.o,$(PROG_OBJS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter-out $(LIB_INTERNAL),$^) $(LIB_INTERNAL) $(LIBS) $(PROG_LIBS) -lcmocka

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
	$(PYTHON) tests/integration/logs.py --eddy $(BUILD)/eddy
	$(PYTHON) tests/integration/proxy.py --eddy $(BUILD)/eddy
	$(PYTHON) tests/integration/metrics.py --eddy $(BUILD)/eddy
	$(PYTHON) tests/integration/service.py --eddy $(BUILD)/eddy
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
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/logs.py --eddy $(BUILD)/san/eddy
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/proxy.py --eddy $(BUILD)/san/eddy
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/metrics.py --eddy $(BUILD)/san/eddy
	ASAN_OPTIONS=detect_leaks=1 $(PYTHON) tests/integration/service.py --eddy $(BUILD)/san/eddy

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

# make install [PREFIX=/usr/local] [DESTDIR=...]: the program in sbin (a
# daemon root starts and that then runs as --user, as nginx and sshd are),
# its manual, the configuration example and the systemd units with their
# paths rewritten to PREFIX and SYSCONFDIR.  SYSCONFDIR/eddy/eddy.yaml, the
# configuration the unit starts eddy with, is written only when there is
# none; logrotate reads /etc/logrotate.d alone, hence SYSCONFDIR /etc.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/eddy
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL    ?= install
UNITS      := eddy.service eddy.socket

install: all
	@$(MAKE) --no-print-directory install-files

install-files:
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/eddy
	$(INSTALL) -m 0755 $(BUILD)/eddy $(DESTDIR)$(SBINDIR)/eddy
	$(INSTALL) -m 0644 man/eddy.8 $(DESTDIR)$(MANDIR)/man8/eddy.8
	$(INSTALL) -m 0644 eddy.yaml.example $(DESTDIR)$(DOCDIR)/eddy.yaml.example
	@set -e; for u in $(UNITS); do \
	    echo "dist/systemd/$$u -> $(DESTDIR)$(UNITDIR)/$$u"; \
	    sed -e 's|/usr/sbin/eddy|$(SBINDIR)/eddy|g' -e 's|/etc/eddy/|$(SYSCONFDIR)/eddy/|g' \
	        dist/systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u.tmp; \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp; mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u; \
	done
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/eddy/eddy.yaml ]; then \
	    echo "keeping $(DESTDIR)$(SYSCONFDIR)/eddy/eddy.yaml"; \
	else \
	    echo "$(INSTALL) -m 0644 dist/eddy.yaml $(DESTDIR)$(SYSCONFDIR)/eddy/eddy.yaml"; \
	    $(INSTALL) -m 0644 dist/eddy.yaml $(DESTDIR)$(SYSCONFDIR)/eddy/eddy.yaml; \
	fi
	@if [ -f dist/logrotate/eddy ]; then \
	    echo "$(INSTALL) -D -m 0644 dist/logrotate/eddy $(DESTDIR)$(SYSCONFDIR)/logrotate.d/eddy"; \
	    $(INSTALL) -D -m 0644 dist/logrotate/eddy $(DESTDIR)$(SYSCONFDIR)/logrotate.d/eddy; \
	fi

# Leaves SYSCONFDIR/eddy/eddy.yaml: the operator's.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/eddy $(DESTDIR)$(MANDIR)/man8/eddy.8 \
	    $(DESTDIR)$(DOCDIR)/eddy.yaml.example $(UNITS:%=$(DESTDIR)$(UNITDIR)/%) \
	    $(DESTDIR)$(SYSCONFDIR)/logrotate.d/eddy
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/eddy/eddy.yaml ]; then \
	    echo "kept $(DESTDIR)$(SYSCONFDIR)/eddy/eddy.yaml (remove it by hand if unwanted)"; fi

# The Debian package, built by dpkg-buildpackage from a copy of the tree
# outside it (its output goes to the parent directory, and its .d files must
# not reach this Makefile's); the .deb lands in $(BUILD)/.
deb:
	@scripts/deps.sh deb
	@scripts/build-deb.sh $(BUILD)

# make install's layout and the units (systemd-analyze), then the package:
# its contents and, as root, an install in a fresh Debian 12 chroot.
test-package:
	tests/package/install.sh $(BUILD)
	tests/package/deb.sh $(BUILD)

clean:
	rm -rf $(BUILD)

# libFuzzer targets: make fuzz FUZZ_SECONDS=N
-include fuzz/fuzz.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
