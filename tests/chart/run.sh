#!/usr/bin/env bash
# Runs the Helm chart tests (chart.test.mjs) with node:test. ctest calls it
# with CREDSYNC_BIN set to the built sidecar, whose `validate` command checks
# every config.yaml the chart renders.
#
#   CREDSYNC_BIN=build/sidecar/credsync tests/chart/run.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

command -v node >/dev/null || { echo "chart tests: node is not installed (apt-get install nodejs)" >&2; exit 1; }
for pkg in yaml kubernetes-models; do
  if [[ ! -f "${repo}/node_modules/${pkg}/package.json" ]]; then
    echo "chart tests: ${repo}/node_modules/${pkg} is missing: run 'npm ci' in ${repo}" >&2
    exit 1
  fi
done
if [[ -z "${CREDSYNC_BIN:-}" || ! -x "${CREDSYNC_BIN}" ]]; then
  echo "chart tests: set CREDSYNC_BIN to the built credsync binary (ctest does)" >&2
  exit 1
fi
# Fails here, with helm.sh's own one-line reason, if helm cannot be found or unpacked.
"${repo}/scripts/helm.sh" version --short >/dev/null

cd "${repo}"
exec node --test --test-reporter=spec tests/chart/chart.test.mjs
