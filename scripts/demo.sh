#!/usr/bin/env bash
# The emulator demo: the official Alibaba Cloud Node SDK against
# credsync-emulator, step by step: a KMS GetSecretValue round trip, a
# rotation, and the new key on the next call. Secrets are printed masked.
#
#   scripts/demo.sh
#
# Installs what is missing (scripts/install-deps.sh), builds the emulator into
# build/release if needed. Set CREDSYNC_EMULATOR to use a binary you built
# elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

scripts/install-deps.sh

if [[ -z "${CREDSYNC_EMULATOR:-}" ]]; then
  echo "== building credsync-emulator (build/release)"
  scripts/build.sh release credsync-emulator
  CREDSYNC_EMULATOR="${repo}/build/release/tests/emulator/credsync-emulator"
fi
[[ -x "${CREDSYNC_EMULATOR}" ]] || { echo "demo: ${CREDSYNC_EMULATOR} is not an executable" >&2; exit 1; }
export CREDSYNC_EMULATOR

# Keep the emulator's log after the demo, next to the binary's tree.
export CREDSYNC_E2E_LOG_DIR="${CREDSYNC_E2E_LOG_DIR:-${repo}/build/demo-logs}"
mkdir -p "${CREDSYNC_E2E_LOG_DIR}"
rm -f "${CREDSYNC_E2E_LOG_DIR}"/emulator-*.stderr.log
exec node tests/e2e/node/demo.mjs
