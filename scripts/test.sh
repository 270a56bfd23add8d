#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the Release tree and
# the ASan+UBSan tree, and runs every ctest case (unit, fuzz-corpus replay,
# end-to-end with the official Alibaba Cloud SDKs) in both; then the TSan
# tree, which builds and runs only the tests labelled "concurrency"; then the
# clang tree builds every library and the binary with -Wthread-safety -Werror,
# clang-tidy checks sidecar/ with its compile commands, and every libFuzzer
# target runs for FUZZ_SECONDS (10) each. clang-format is checked by ctest
# (lint_format). After the release build it packages the Helm chart into
# build/release/chart (helm package) and builds the container image
# (scripts/image.sh; podman, as root), which the release tree's
# e2e_podman_pod runs.
# Set TREES="release" to run only one tree, FUZZ_SECONDS=0 to skip fuzzing,
# SKIP_IMAGE=1 to skip the image build (e2e_podman_pod still builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
status=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# tests/tsan.supp lists (and explains) the uninstrumented-library frames TSan
# must not report; see docs/development.md.
export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$PWD/tests/tsan.supp:halt_on_error=1:second_deadlock_stack=1}
for tree in ${TREES:-release asan tsan}; do
  echo "== $tree: build"
  scripts/build.sh "$tree"
  if [[ "$tree" == release ]]; then
    # The Helm chart as a chart repository would serve it (its README's
    # generated table checked first), into the build tree, never the source
    # tree; tests/chart checks a package of it the same way.
    echo "== chart: helm package into build/release/chart"
    rm -rf build/release/chart
    { node scripts/chart-readme.mjs --check &&
      scripts/helm.sh package charts/credsync --destination build/release/chart; } || status=1
  fi
  if [[ "$tree" == release && "${SKIP_IMAGE:-0}" != 1 ]]; then
    # The container image from deploy/Dockerfile (podman), its size printed;
    # the release tree's e2e_podman_pod then plays the chart's pod with it.
    echo "== image: scripts/image.sh"
    scripts/image.sh || status=1
  fi
  labels=()
  [[ "$tree" == tsan ]] && labels=(-L concurrency)
  # The sanitizer tree runs every suite too, but not the debug-level re-run
  # of all of them (e2e_secret_hygiene, a log scan that ASan adds nothing
  # to), and a shorter crash drill (the full 10,000 rotations and 200 kills
  # run in the release tree): it keeps .ci/run well within its budget.
  [[ "$tree" == asan ]] && labels=(-E '^e2e_secret_hygiene$')
  echo "== $tree: ctest ${labels[*]}"
  (
    cd "build/$tree"
    if [[ "$tree" == asan ]]; then
      export CREDSYNC_CRASH_ROTATIONS=${CREDSYNC_CRASH_ROTATIONS:-2000}
      export CREDSYNC_CRASH_KILLS=${CREDSYNC_CRASH_KILLS:-50}
    fi
    ctest "${labels[@]}" --output-on-failure -j"${JOBS:-$(nproc)}" --timeout 600
  ) || status=1
done
# clang's -Wthread-safety (with -Werror) over every library and the binary:
# the ABSL_GUARDED_BY and ABSL_EXCLUSIVE_LOCKS_REQUIRED annotations of sync/,
# server/, hooks/ and the rest are only checked by clang. The fuzz tree is the
# clang tree; its fuzz targets reuse these objects.
echo "== clang: -Wthread-safety -Werror build of the libraries and the binary (build/fuzz)"
scripts/build.sh fuzz credsync || status=1
# clang-tidy (.clang-tidy) over sidecar/ with that tree's compile commands.
echo "== clang-tidy: sidecar/ (tests/lint/check_tidy.sh)"
tests/lint/check_tidy.sh build/fuzz || status=1
if [[ "${FUZZ_SECONDS:-10}" != 0 ]]; then
  echo "== fuzz: every target for ${FUZZ_SECONDS:-10}s (scripts/fuzz.sh)"
  scripts/fuzz.sh "${FUZZ_SECONDS:-10}" || status=1
fi
exit $status
