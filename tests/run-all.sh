#!/bin/sh
# make test: every suite under every Lua we support and under the sanitizers, then luacheck.
# Ends with one line of totals: "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
passed=0
failed=0
log=build/test-logs
mkdir -p "$log"

run_variant() {   # name, command...
  name=$1; shift
  echo "== $name"
  "$@" 2>&1 | tee "$log/$name.txt"
  line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed$" "$log/$name.txt" | tail -n 1)
  if [ -z "$line" ]; then
    echo "$name: the run ended without its totals (crashed?): counted as 1 failed"
    failed=$((failed + 1))
  else
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/')
    f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/')
    passed=$((passed + p)); failed=$((failed + f))
  fi
}

run_variant lua5.4 lua5.4 tests/run.lua lua5.4
run_variant lua5.3 lua5.3 tests/run.lua lua5.3
run_variant luajit luajit tests/run.lua luajit
asan_lib=$(cc -print-file-name=libasan.so)
ubsan_lib=$(cc -print-file-name=libubsan.so)
run_variant asan env LD_PRELOAD="$asan_lib $ubsan_lib" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 lua5.4 tests/run.lua asan

# libFuzzer targets, a few seconds each (make fuzz runs them longer); skipped only without clang's fuzzer
run_variant fuzz env FUZZ_SEED=1 sh tests/fuzz/run.sh 8 build

echo "== luacheck"
if luacheck --quiet lua rules tests lua/leadq/cli/leadq; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
