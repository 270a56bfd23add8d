#!/usr/bin/env bash
# The pod simulation end to end (ctest e2e_pod_simulation; see
# tests/e2e/CMakeLists.txt): renders charts/credsync and runs its pods with
# tests/e2e/pod/podsim.mjs against credsync-emulator.
#
#   CREDSYNC_BIN=... CREDSYNC_EMULATOR=... tests/e2e/pod/run.sh [TEST.mjs...]
#
# The whole test runs inside new network, mount and PID namespaces (unshare):
# the pods bind the rendered 0.0.0.0:9808 in a network namespace of their
# own, bind-mount volumes onto the rendered paths (/etc/credsync, ...) in
# mount namespaces that vanish with the test, and every process they start
# dies with the PID namespace. It needs root, util-linux (unshare, nsenter,
# setpriv, mount) and overlayfs; without them it is skipped (exit 77).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../../.." && pwd)"

skip() {
  echo "e2e_pod_simulation: SKIPPED: $*"
  exit 77
}
die() {
  echo "e2e_pod_simulation: $*" >&2
  exit 1
}

# Inside the namespaces: bring loopback up, run the suites.
if [[ "${1:-}" == "--inside" ]]; then
  shift
  if command -v ip >/dev/null 2>&1; then
    ip link set lo up
  else
    # No iproute2: SIOCSIFFLAGS on lo with python3.
    python3 -c '
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ifr = struct.pack("16sH22x", b"lo", 0)
flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, ifr))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 0x1))'
  fi
  cd "${repo}"
  # Not exec: this shell stays PID 1 of the namespace and reaps orphans;
  # when it exits the kernel kills whatever is left.
  status=0
  node --test --test-reporter=spec --test-concurrency=1 "$@" || status=$?
  exit "${status}"
fi

[[ "$(id -u)" -eq 0 ]] || skip "needs root (network and mount namespaces, tmpfs and bind mounts, setpriv to the pod's users); run as root"
for tool in unshare nsenter setpriv mount umount; do
  command -v "${tool}" >/dev/null 2>&1 || skip "${tool} is not installed (Debian: util-linux, mount)"
done
unshare --net --mount --pid --fork --mount-proc true 2>/dev/null \
  || skip "unshare cannot create network, mount and PID namespaces here (no CAP_SYS_ADMIN? a restricted container?)"
grep -qw overlay /proc/filesystems 2>/dev/null || modprobe overlay 2>/dev/null \
  || skip "overlayfs is not available (needed to create mount points without touching the host)"
command -v ip >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 \
  || die "neither ip (iproute2) nor python3 is installed to bring loopback up"

"${repo}/tests/e2e/node/run.sh" --check-deps >/dev/null || die "node or node_modules is not ready (see above)"
[[ -n "${CREDSYNC_BIN:-}" && -x "${CREDSYNC_BIN}" ]] || die "CREDSYNC_BIN=${CREDSYNC_BIN:-} is not the credsync binary"
[[ -n "${CREDSYNC_EMULATOR:-}" && -x "${CREDSYNC_EMULATOR}" ]] \
  || die "CREDSYNC_EMULATOR=${CREDSYNC_EMULATOR:-} is not the credsync-emulator binary"
# The pods' users must be able to execute the bind-mounted binary.
export CREDSYNC_BIN="$(readlink -f "${CREDSYNC_BIN}")"
export CREDSYNC_EMULATOR="$(readlink -f "${CREDSYNC_EMULATOR}")"
export CREDSYNC_E2E_LOG_DIR="${CREDSYNC_E2E_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/credsync-pod-logs.XXXXXX")}"
mkdir -p "${CREDSYNC_E2E_LOG_DIR}"
rm -f "${CREDSYNC_E2E_LOG_DIR}"/*.log

if [[ $# -eq 0 ]]; then
  set -- "${here}/pod_simulation.test.mjs"
fi
echo "e2e_pod_simulation: chart ${CREDSYNC_POD_CHART:-${repo}/charts/credsync}; logs in ${CREDSYNC_E2E_LOG_DIR}"
status=0
unshare --net --mount --propagation private --pid --fork --mount-proc --kill-child \
  -- "${BASH_SOURCE[0]}" --inside "$@" || status=$?
if [[ ${status} -ne 0 ]]; then
  echo "e2e_pod_simulation: failed (${status}); the process logs:" >&2
  for f in "${CREDSYNC_E2E_LOG_DIR}"/*.log; do
    [[ -f "$f" ]] || continue
    echo "----- ${f}" >&2
    tail -c 8192 "$f" >&2
  done
fi
exit "${status}"
