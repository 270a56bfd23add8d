#!/usr/bin/env bash
# Runs every libFuzzer target (or the named ones) for SECONDS each, starting
# from its checked-in seed corpus. Builds build/fuzz with clang first.
#
#   scripts/fuzz.sh              10 s per target (the CI smoke run)
#   scripts/fuzz.sh 600          fuzz for longer
#   scripts/fuzz.sh 3600 config_parse kms_response
#
# New inputs go to build/fuzz/corpus/NAME (the checked-in seeds are never
# modified); a crash leaves its input in build/fuzz/artifacts/ and fails the
# run. To keep an input as a regression seed, copy it into
# tests/fuzz/corpus/NAME: it then replays in every ctest run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a number" >&2; exit 2; }
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(sed -n 's/^credsync_add_fuzzer(\([a-z0-9_]*\).*/\1/p' tests/fuzz/CMakeLists.txt)
fi
build_targets=()
for target in "${targets[@]}"; do build_targets+=("${target}_fuzzer"); done
scripts/build.sh fuzz "${build_targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p build/fuzz/artifacts
status=0
for target in "${targets[@]}"; do
  corpus="build/fuzz/corpus/${target}"
  mkdir -p "$corpus"
  log="build/fuzz/${target}.log"
  if "build/fuzz/tests/fuzz/${target}_fuzzer" "$corpus" "tests/fuzz/corpus/${target}" \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="build/fuzz/artifacts/${target}-" >"$log" 2>&1; then
    echo "fuzz: ${target}: $(grep -Eo 'Done [0-9]+ runs' "$log" | tail -1 || echo done), $(grep -Eo 'cov: [0-9]+' "$log" | tail -1) in ${seconds}s, no crash"
  else
    echo "fuzz: ${target}: FAILED (see ${log} and build/fuzz/artifacts/)" >&2
    tail -30 "$log" >&2
    status=1
  fi
done
exit $status
