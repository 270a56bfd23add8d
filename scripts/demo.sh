#!/usr/bin/env bash
# The demo: credsync against the bundled emulator, step by step. The emulator
# plays Alibaba Cloud (STS, KMS, a target service) and the cluster's OIDC
# issuer; credsync runs as in a pod with only the RRSA environment; the
# official Node SDK plays the app. It shows credentials.ini appear, a
# rotation, and the file change. Secrets are printed masked.
#
#   scripts/demo.sh
#
# Installs what is missing (scripts/install-deps.sh) and builds the two
# binaries into build/release. CREDSYNC_BIN / CREDSYNC_EMULATOR override them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

scripts/install-deps.sh

if [[ -z "${CREDSYNC_BIN:-}" || -z "${CREDSYNC_EMULATOR:-}" ]]; then
  echo "== building credsync and credsync-emulator (build/release)"
  scripts/build.sh release credsync credsync-emulator
fi
export CREDSYNC_BIN="${CREDSYNC_BIN:-${repo}/build/release/sidecar/credsync}"
export CREDSYNC_EMULATOR="${CREDSYNC_EMULATOR:-${repo}/build/release/tests/emulator/credsync-emulator}"

# Keep the processes' logs after the demo.
export CREDSYNC_E2E_LOG_DIR="${CREDSYNC_E2E_LOG_DIR:-${repo}/build/demo-logs}"
mkdir -p "${CREDSYNC_E2E_LOG_DIR}"
rm -f "${CREDSYNC_E2E_LOG_DIR}"/*.stderr.log
echo "== logs: ${CREDSYNC_E2E_LOG_DIR}"
exec node tests/e2e/node/demo.mjs
