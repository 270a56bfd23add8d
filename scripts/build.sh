#!/usr/bin/env bash
# Configures and builds one tree. usage: scripts/build.sh release|asan|tsan|debug|fuzz [targets...]
#   release  build/release, -O2, the tree the demo and benchmarks use
#   asan     build/asan, AddressSanitizer + UndefinedBehaviorSanitizer at -O1
#            with line tables (enough for symbolized reports, cheaper to compile)
#   tsan     build/tsan, ThreadSanitizer at -O1 -g; by default only the tests
#            labelled "concurrency" (target credsync_concurrency_tests)
#   debug    build/debug
#   fuzz     build/fuzz, clang with libFuzzer + ASan/UBSan: the NAME_fuzzer
#            binaries (scripts/fuzz.sh runs them)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/build.sh release|asan|tsan|debug|fuzz [targets...]}
shift
case "$kind" in
  release) args=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG") ;;
  asan) args=(-DCMAKE_BUILD_TYPE=Sanitize "-DCMAKE_CXX_FLAGS_SANITIZE=-O1 -g1" -DCREDSYNC_SANITIZE=ON) ;;
  tsan) args=(-DCMAKE_BUILD_TYPE=Tsan "-DCMAKE_CXX_FLAGS_TSAN=-O1 -g" -DCREDSYNC_TSAN=ON) ;;
  debug) args=(-DCMAKE_BUILD_TYPE=Debug) ;;
  fuzz) args=(-DCMAKE_BUILD_TYPE=Sanitize "-DCMAKE_CXX_FLAGS_SANITIZE=-O1 -g1" -DCREDSYNC_SANITIZE=ON
              -DCREDSYNC_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "build: unknown tree '$kind' (release, asan, tsan, debug or fuzz)" >&2; exit 2 ;;
esac
dir="build/$kind"
if [[ ! -f "$dir/build.ninja" ]]; then
  cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
fi
targets=()
for target in "$@"; do targets+=(--target "$target"); done
if [[ "$kind" == tsan && ${#targets[@]} -eq 0 ]]; then targets=(--target credsync_concurrency_tests); fi
cmake --build "$dir" "${targets[@]}" -- -j"${JOBS:-$(nproc)}"
