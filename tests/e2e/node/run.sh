#!/usr/bin/env bash
# Runs Node e2e suites against credsync-emulator (ctest calls it; see
# tests/e2e/CMakeLists.txt).
#
#   run.sh --check-deps                  are node and node_modules ready?
#   run.sh EMULATOR TEST.mjs [TEST.mjs...]
#
# Node reads NODE_EXTRA_CA_CERTS once, at startup, so the emulator's test CA
# has to exist before `node --test` starts: one emulator start generates the
# PKI in a temporary dir, NODE_EXTRA_CA_CERTS points at its ca.pem, and every
# emulator the tests start (tests/e2e/node/emulator.mjs) copies that PKI into
# its own fresh state dir.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../../.." && pwd)"

die() {
  echo "e2e: $*" >&2
  exit 1
}

check_deps() {
  command -v node >/dev/null 2>&1 || die "node is not installed (Node.js >= 18 is needed; see scripts/install-deps.sh)"
  if [[ ! -d "${repo}/node_modules" ]]; then
    die "${repo}/node_modules is missing: run 'npm ci' in ${repo} to install the pinned SDKs from package-lock.json"
  fi
  # Every pinned dependency installed at exactly its pinned version.
  (cd "${repo}" && node -e '
    const fs = require("fs");
    const want = JSON.parse(fs.readFileSync("package.json", "utf8")).dependencies;
    const bad = [];
    for (const [name, version] of Object.entries(want)) {
      let have = "missing";
      try { have = JSON.parse(fs.readFileSync(`node_modules/${name}/package.json`, "utf8")).version; } catch {}
      if (have !== version) bad.push(`${name}: want ${version}, have ${have}`);
    }
    if (bad.length) { console.error(bad.join("\n")); process.exit(1); }
  ') || die "node_modules does not match package.json: run 'npm ci' in ${repo}"
}

if [[ "${1:-}" == "--check-deps" ]]; then
  check_deps
  echo "e2e: node $(node --version) and node_modules are ready"
  exit 0
fi

[[ $# -ge 2 ]] || die "usage: run.sh EMULATOR TEST.mjs [TEST.mjs...] | run.sh --check-deps"
emulator="$1"
shift
[[ -x "${emulator}" ]] || die "emulator binary ${emulator} does not exist: build the credsync-emulator target"
check_deps

work="$(mktemp -d "${TMPDIR:-/tmp}/credsync-e2e.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

export CREDSYNC_EMULATOR="${emulator}"
export CREDSYNC_E2E_LOG_DIR="${CREDSYNC_E2E_LOG_DIR:-${work}/logs}"
mkdir -p "${CREDSYNC_E2E_LOG_DIR}"
rm -f "${CREDSYNC_E2E_LOG_DIR}"/emulator-*.stderr.log

node "${here}/emulator.mjs" bootstrap-pki "${work}/pki" >/dev/null \
  || die "could not start ${emulator} to generate its PKI (see above)"
export CREDSYNC_EMULATOR_PKI_DIR="${work}/pki"
export NODE_EXTRA_CA_CERTS="${work}/pki/ca.pem"

echo "e2e: emulator ${emulator}; logs in ${CREDSYNC_E2E_LOG_DIR}"
cd "${repo}"
status=0
node --test --test-reporter=spec "$@" || status=$?
exit "${status}"
