# leadq: build, test, bench, install.
# Variables are named as LuaRocks names them, so `luarocks make` and hand builds agree.

LUA ?= lua5.4
ifeq ($(LUA),luajit)
LUA_INCDIR ?= /usr/include/luajit-2.1
else
LUA_INCDIR ?= /usr/include/$(LUA)
endif
CC ?= cc
CFLAGS ?= -O2 -g
LIBFLAG ?= -shared
SANITIZE ?=
WERROR ?=
BUILD ?= build

WARNINGS = -Wall -Wextra -Wshadow -Wpointer-arith -Wcast-align -Wwrite-strings \
  -Wstrict-prototypes -Wmissing-prototypes -Wmissing-declarations -Wundef \
  -Wdeclaration-after-statement -Wnested-externs -Wno-unused-parameter
ALL_CFLAGS = -std=gnu99 -fPIC -fvisibility=hidden -pthread $(WARNINGS) $(WERROR) $(CFLAGS) -I$(LUA_INCDIR)

# One library folder per Lua (and one for the sanitizer build), so builds never mix.
ifeq ($(SANITIZE),1)
VARIANT = asan
ALL_CFLAGS += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SAN_LDFLAGS = -fsanitize=address,undefined
else
VARIANT = $(LUA)
endif
LIBDIR = $(BUILD)/lib/$(VARIANT)
OBJDIR = $(BUILD)/obj/$(VARIANT)

SOURCES = $(wildcard csrc/*.c)
HEADERS = $(wildcard csrc/*.h)
OBJECTS = $(patsubst csrc/%.c,$(OBJDIR)/%.o,$(SOURCES))
CORE = $(LIBDIR)/leadq/core.so

.PHONY: all core deps variants test demo bench repl clean install uninstall rock

all: deps core $(BUILD)/leadq

deps:
	@.ci/install-deps core

core: $(CORE)

$(OBJDIR)/%.o: csrc/%.c $(HEADERS) | $(OBJDIR)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE): $(OBJECTS) | $(LIBDIR)/leadq
	$(CC) $(LIBFLAG) $(SAN_LDFLAGS) -pthread -o $@ $(OBJECTS) -lhiredis -lz -lcrypto -lm

$(OBJDIR) $(LIBDIR)/leadq:
	mkdir -p $@

# The command: from a build tree it finds lua/ and build/lib from where it stands; installed,
# the modules on the usual paths (make install gives it the Lua it was built for).
$(BUILD)/leadq: lua/leadq/cli/leadq | $(LIBDIR)/leadq
	cp lua/leadq/cli/leadq $@
	chmod +x $@

# Every Lua we support, plus the sanitizer build, all warning-free.
variants: deps
	$(MAKE) --no-print-directory LUA=lua5.4 WERROR=-Werror core $(BUILD)/leadq
	$(MAKE) --no-print-directory LUA=lua5.3 WERROR=-Werror core
	$(MAKE) --no-print-directory LUA=luajit WERROR=-Werror core
	$(MAKE) --no-print-directory LUA=lua5.4 SANITIZE=1 WERROR=-Werror core

test: variants
	@.ci/install-deps openresty fuzz report redis
	@sh tests/run-all.sh

demo: all
	@$(BUILD)/leadq demo

bench: all
	@.ci/install-deps core bench
	@$(LUA) tests/bench/run.lua

repl: all
	@$(LUA) -i -e 'package.path="lua/?.lua;lua/?/init.lua;"..package.path; package.cpath="$(LIBDIR)/?.so;"..package.cpath'

clean:
	rm -rf $(BUILD)

# make install [PREFIX=/usr/local] [DESTDIR=staging] [LUA=lua5.4|lua5.3|luajit]: the module where
# that Lua looks (LuaJIT is Lua 5.1 to its package paths), the command in bin/, the shipped rules
# beside the modules as leadq/rules/ (where the command finds them, as after `luarocks make`).
# install(1) writes each file under a new inode: a running nginx keeps its mapped core.so intact.
PREFIX ?= /usr/local
ifeq ($(LUA),luajit)
LUA_VERSION ?= 5.1
else
LUA_VERSION ?= $(patsubst lua%,%,$(LUA))
endif
BINDIR ?= $(PREFIX)/bin
INST_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
INSTALL ?= install
LUA_FILES = $(sort $(shell find lua/leadq -name '*.lua'))
RULE_FILES = $(wildcard rules/*.lua)
LIST_FILES = $(wildcard rules/lists/*)

install: core
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INST_LIBDIR)/leadq $(DESTDIR)$(INST_LUADIR)/leadq/rules/lists
	$(INSTALL) -m 755 $(CORE) $(DESTDIR)$(INST_LIBDIR)/leadq/core.so
	for f in $(LUA_FILES); do \
	  to=$(DESTDIR)$(INST_LUADIR)/$${f#lua/}; $(INSTALL) -d $${to%/*} && $(INSTALL) -m 644 $$f $$to || exit 1; \
	done
	$(INSTALL) -m 644 $(RULE_FILES) $(DESTDIR)$(INST_LUADIR)/leadq/rules/
	$(INSTALL) -m 644 $(LIST_FILES) $(DESTDIR)$(INST_LUADIR)/leadq/rules/lists/
	sed '1s|.*|#!/usr/bin/env $(LUA)|' lua/leadq/cli/leadq > $(BUILD)/leadq-$(LUA).installed
	$(INSTALL) -m 755 $(BUILD)/leadq-$(LUA).installed $(DESTDIR)$(BINDIR)/leadq

# A source rock of this clone's HEAD, $(BUILD)/rock/leadq-scm-1.src.rock, which `luarocks build`
# takes offline. luarocks pack clones the source URL from a temporary folder, where the rockspec's
# relative URL names nothing: the copy it packs names this clone by its absolute path.
rock:
	mkdir -p $(BUILD)/rock
	sed 's|^  url = .*|  url = "git+file://$(CURDIR)",|' rockspec/leadq-scm-1.rockspec > $(BUILD)/rock/leadq-scm-1.rockspec
	cd $(BUILD)/rock && luarocks pack leadq-scm-1.rockspec

# What install installed, then the folders it made if they are left empty.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/leadq $(DESTDIR)$(INST_LIBDIR)/leadq/core.so
	rm -f $(patsubst lua/%,$(DESTDIR)$(INST_LUADIR)/%,$(LUA_FILES))
	rm -f $(patsubst %,$(DESTDIR)$(INST_LUADIR)/leadq/%,$(RULE_FILES) $(LIST_FILES))
	-[ ! -d $(DESTDIR)$(INST_LUADIR)/leadq ] || find $(DESTDIR)$(INST_LUADIR)/leadq -depth -type d -empty -delete
	-rmdir $(DESTDIR)$(INST_LIBDIR)/leadq 2>/dev/null || true

# Fuzzing (tests/fuzz): libFuzzer targets built by clang with ASan and UBSan, run from this folder.
# `make fuzz` runs each for FUZZ_SECONDS; `make test` runs each for a few seconds (tests/run-all.sh).
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR = $(BUILD)/fuzz
FUZZ_CFLAGS = -std=gnu99 -g -O1 -fno-omit-frame-pointer -pthread -fsanitize=address,undefined \
  -fno-sanitize-recover=undefined $(WARNINGS) -Icsrc -I/usr/include/lua5.4
FUZZ_ZLIB = $(if $(wildcard csrc/input.c),-lz)
FUZZ_CORE_LIBS ?= $(if $(wildcard csrc/redis_binding.c),-lhiredis) $(FUZZ_ZLIB) -lcrypto -lm
FUZZ_OBJECTS = $(patsubst csrc/%.c,$(FUZZ_DIR)/obj/%.o,$(SOURCES))
# the core's objects in an archive: a target takes the ones it needs, whatever the reader grows into
FUZZ_CORE = $(FUZZ_DIR)/libcore.a

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_DIR)/fuzz_csv $(FUZZ_DIR)/fuzz_state $(FUZZ_DIR)/fuzz_json $(FUZZ_DIR)/fuzz_rules \
  $(FUZZ_DIR)/fuzz_snapshot $(FUZZ_DIR)/fuzz_stream $(FUZZ_DIR)/fuzz_pool

fuzz:
	@.ci/install-deps core fuzz
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(BUILD)

$(FUZZ_DIR)/obj:
	mkdir -p $@

$(FUZZ_DIR)/obj/%.o: csrc/%.c $(HEADERS) | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_CORE): $(FUZZ_OBJECTS)
	rm -f $@
	ar rcs $@ $(FUZZ_OBJECTS)

# the reader refills its buffer every 64 bytes here, so records straddle refills (this object
# comes before the archive, whose csv_reader.o is then never taken)
$(FUZZ_DIR)/obj/csv_reader_chunk64.o: csrc/csv_reader.c $(HEADERS) | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -DLQ_CSV_CHUNK=64 -c $< -o $@

$(FUZZ_DIR)/fuzz_csv: tests/fuzz/fuzz_csv.c $(FUZZ_DIR)/obj/csv_reader_chunk64.o $(FUZZ_CORE)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/obj/csv_reader_chunk64.o $(FUZZ_CORE) \
	  -llua5.4 $(FUZZ_CORE_LIBS)

# the stream reads 64 bytes at a time and cuts a file every 16 bytes here: lines straddle its blocks,
# and its threads meet inside leads' runs
$(FUZZ_DIR)/obj/event_stream_small.o: csrc/event_stream.c $(HEADERS) | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -DLQ_STREAM_BLOCK=64 -DLQ_STREAM_MIN_RANGE=16 -c $< -o $@

$(FUZZ_DIR)/fuzz_stream: tests/fuzz/fuzz_stream.c $(FUZZ_DIR)/obj/event_stream_small.o $(FUZZ_CORE)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/obj/event_stream_small.o $(FUZZ_CORE) \
	  -llua5.4 $(FUZZ_CORE_LIBS)

$(FUZZ_DIR)/fuzz_state: tests/fuzz/fuzz_state.c $(FUZZ_CORE)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_CORE) -llua5.4 $(FUZZ_CORE_LIBS)

$(FUZZ_DIR)/fuzz_snapshot: tests/fuzz/fuzz_snapshot.c $(FUZZ_CORE)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_CORE) -llua5.4 $(FUZZ_CORE_LIBS)

$(FUZZ_DIR)/fuzz_pool: tests/fuzz/fuzz_pool.c $(FUZZ_CORE)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_CORE)

$(FUZZ_DIR)/fuzz_json: tests/fuzz/fuzz_json.c | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< -llua5.4 -lm

$(FUZZ_DIR)/fuzz_rules: tests/fuzz/fuzz_rules.c $(FUZZ_OBJECTS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJECTS) -llua5.4 $(FUZZ_CORE_LIBS)
