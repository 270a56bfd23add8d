#!/usr/bin/env bash
# Secret hygiene, end to end (issue 6): runs every Node e2e suite
# (tests/e2e/node/*.test.mjs) and every Python e2e suite
# (tests/e2e/python/test_*.py) once more with credsync at debug level
# (CREDSYNC_E2E_LOG_LEVEL=debug) and every emulator recording the secrets it
# issues (CREDSYNC_RECORD_SECRETS=1), then scans every log of credsync and
# its CLI for each of those secrets (tests/e2e/hygiene/scan.mjs).
#
#   run.sh EMULATOR        (CREDSYNC_BIN and CREDSYNC_E2E_LOG_DIR from ctest)
#
# The suites must pass too: a suite that stops early would leave the scan
# short of what the whole suite logs. The pod simulation (tests/e2e/pod)
# is not part of it: it needs root, and runs the same binary and commands.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
e2e="$(cd "${here}/.." && pwd)"

# A full run (2026-11, 8 Node suites and 1 Python suite) records about 360
# secrets and scans about 1650 lines of credsync in 124 files, 150 of them at
# debug level (credsync has one debug message, "fetched", per fetch). These
# floors catch a scan that would prove nothing: emulators that recorded
# nothing, logs kept elsewhere, or credsync not at debug level.
min_secrets="${CREDSYNC_HYGIENE_MIN_SECRETS:-200}"
min_lines="${CREDSYNC_HYGIENE_MIN_LINES:-800}"
min_debug_lines="${CREDSYNC_HYGIENE_MIN_DEBUG_LINES:-75}"

die() {
  echo "hygiene: $*" >&2
  exit 1
}

[[ $# -eq 1 ]] || die "usage: run.sh EMULATOR"
emulator="$1"
[[ -x "${emulator}" ]] || die "emulator binary ${emulator} does not exist: build credsync-emulator"
[[ -n "${CREDSYNC_BIN:-}" && -x "${CREDSYNC_BIN}" ]] || die "CREDSYNC_BIN must name the credsync binary"

work="$(mktemp -d "${TMPDIR:-/tmp}/credsync-hygiene.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
log_dir="${CREDSYNC_E2E_LOG_DIR:-${work}/logs}"
# A fresh dir: logs of an earlier run must neither hide nor add findings.
rm -rf "${log_dir}"
mkdir -p "${log_dir}"
export CREDSYNC_E2E_LOG_DIR="${log_dir}"
export CREDSYNC_E2E_LOG_LEVEL=debug
export CREDSYNC_RECORD_SECRETS=1

mapfile -t node_suites < <(find "${e2e}/node" -maxdepth 1 -name '*.test.mjs' | sort)
mapfile -t python_suites < <(find "${e2e}/python" -maxdepth 1 -name 'test_*.py' -printf '%f\n' | sed 's/\.py$//' | sort)
[[ ${#node_suites[@]} -gt 0 ]] || die "no Node suites in ${e2e}/node"
echo "hygiene: Node suites: ${node_suites[*]##*/}"
echo "hygiene: Python suites: ${python_suites[*]}"

# The test runners' own output (what the tests print, not credsync) is kept
# beside the logs, as suite-*.out, and not scanned.
failed=()
started=${SECONDS}
"${e2e}/node/run.sh" "${emulator}" "${node_suites[@]}" >"${log_dir}/suite-node.out" 2>&1 || failed+=(node)
echo "hygiene: Node suites done in $((SECONDS - started)) s:" \
  $(grep -E '^ℹ (tests|pass|fail) ' "${log_dir}/suite-node.out" | tr -d 'ℹ')
if [[ ${#python_suites[@]} -gt 0 ]]; then
  started=${SECONDS}
  "${e2e}/python/run.sh" "${emulator}" "${python_suites[@]}" >"${log_dir}/suite-python.out" 2>&1 || failed+=(python)
  echo "hygiene: Python suites done in $((SECONDS - started)) s:" \
    $(grep -E '^(Ran [0-9]+ tests|OK|FAILED)' "${log_dir}/suite-python.out")
fi
for suite in "${failed[@]}"; do
  echo "hygiene: the ${suite} suites failed at debug level; the end of their output:"
  tail -n 100 "${log_dir}/suite-${suite}.out"
done

status=0
node "${here}/scan.mjs" "${log_dir}" --min-secrets "${min_secrets}" --min-lines "${min_lines}" \
  --min-debug-lines "${min_debug_lines}" || status=1
[[ ${#failed[@]} -eq 0 ]] || status=1
exit "${status}"
