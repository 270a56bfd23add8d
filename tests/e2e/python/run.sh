#!/usr/bin/env bash
# Runs the Python e2e suites (unittest) against credsync-emulator and the
# credsync binary in $CREDSYNC_BIN (ctest calls it; see tests/e2e/CMakeLists.txt).
#
#   run.sh EMULATOR test_module [test_module...]
#
# The client is Debian's python3-grpcio, with stubs generated at test time
# from proto/ by protoc and grpc_python_plugin (tests/e2e/python/harness.py).
# $CREDSYNC_E2E_PYTHON picks the interpreter (default /usr/bin/python3, the
# one Debian's python3-grpcio is installed for).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${CREDSYNC_E2E_PYTHON:-/usr/bin/python3}"

die() {
  echo "e2e: $*" >&2
  exit 1
}

[[ $# -ge 2 ]] || die "usage: run.sh EMULATOR test_module [test_module...]"
emulator="$(realpath "$1")"
shift
[[ -x "${emulator}" ]] || die "emulator binary ${emulator} does not exist: build the credsync-emulator target"
[[ -x "${python}" ]] || die "${python} is missing: install the Debian package python3"
"${python}" -c 'import grpc' 2>/dev/null \
  || die "${python} cannot import grpc: install the Debian package python3-grpcio"
"${python}" -c 'import google.protobuf' 2>/dev/null \
  || die "${python} cannot import google.protobuf: install the Debian package python3-protobuf"
command -v protoc >/dev/null 2>&1 || die "protoc is missing: install the Debian package protobuf-compiler"
{ command -v grpc_python_plugin >/dev/null 2>&1 || [[ -x /usr/bin/grpc_python_plugin ]]; } \
  || die "grpc_python_plugin is missing: install the Debian package protobuf-compiler-grpc"

work="$(mktemp -d "${TMPDIR:-/tmp}/credsync-e2e-py.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
export CREDSYNC_EMULATOR="${emulator}"
# No __pycache__ in the source tree.
export PYTHONDONTWRITEBYTECODE=1
export CREDSYNC_E2E_LOG_DIR="${CREDSYNC_E2E_LOG_DIR:-${work}/logs}"
mkdir -p "${CREDSYNC_E2E_LOG_DIR}"
echo "e2e: $("${python}" -c 'import grpc; print("grpcio", grpc.__version__)'); emulator ${emulator}; logs in ${CREDSYNC_E2E_LOG_DIR}"

cd "${here}"
status=0
"${python}" -m unittest -v "$@" || status=$?
exit "${status}"
