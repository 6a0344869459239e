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

.PHONY: all core deps variants test demo bench repl clean install

all: deps core $(BUILD)/leadq

deps:
	@.ci/install-deps core

core: $(CORE)

$(OBJDIR)/%.o: csrc/%.c $(HEADERS) | $(OBJDIR)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE): $(OBJECTS) | $(LIBDIR)/leadq
	$(CC) $(LIBFLAG) $(SAN_LDFLAGS) -pthread -o $@ $(OBJECTS) -lm

$(OBJDIR) $(LIBDIR)/leadq:
	mkdir -p $@

# The launcher: a Lua script that finds lua/ and build/lib from where it stands.
$(BUILD)/leadq: lua/launcher.lua | $(LIBDIR)/leadq
	cp lua/launcher.lua $@
	chmod +x $@

# Every Lua we support, plus the sanitizer build, all warning-free.
variants: deps
	$(MAKE) --no-print-directory LUA=lua5.4 WERROR=-Werror core $(BUILD)/leadq
	$(MAKE) --no-print-directory LUA=lua5.3 WERROR=-Werror core
	$(MAKE) --no-print-directory LUA=luajit WERROR=-Werror core
	$(MAKE) --no-print-directory LUA=lua5.4 SANITIZE=1 WERROR=-Werror core

test: variants
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

PREFIX ?= /usr/local
LUA_VERSION ?= $(patsubst lua%,%,$(LUA))
INST_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
install: all
	mkdir -p $(INST_LIBDIR)/leadq $(INST_LUADIR)/leadq
	cp $(CORE) $(INST_LIBDIR)/leadq/
	cp lua/leadq/*.lua $(INST_LUADIR)/leadq/
