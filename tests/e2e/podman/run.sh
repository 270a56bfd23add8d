#!/usr/bin/env bash
# The pod end to end on a real container runtime (ctest e2e_podman_pod):
# builds the credsync image from deploy/Dockerfile (scripts/image.sh) and an
# app image (Debian's Node.js and the official SDKs, app/Containerfile), then
# runs, one after the other (each pod binds the sidecar's port on the host
# network), tests/e2e/podman/podman_pod.test.mjs, which renders
# charts/credsync and plays its pod with `podman kube play` against
# credsync-emulator on the host, and injected_pod.test.mjs, which plays a pod
# patched by `credsync injector review` (CREDSYNC_BIN) with the same images.
#
#   CREDSYNC_EMULATOR=... CREDSYNC_BIN=... tests/e2e/podman/run.sh [TEST.mjs...]
#
# The images are built on the host network (their RUN apt-get needs Debian's
# mirror); the pod and the emulator then run in a network namespace this
# script creates (unshare --net: the pod's host network is that namespace,
# so its 0.0.0.0:9808 is bound nowhere else). The test's pods, its image
# tags and its in-memory volume are removed at the end, on failure too; the
# podman build cache and the Debian base image stay, so the next run builds
# only what changed.
#
# Needs root (podman's storage, mounts, namespaces); skipped (77) without.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-${repo}/scripts/podman/containers.conf}"
export CREDSYNC_PODMAN_IMAGE="${CREDSYNC_PODMAN_IMAGE:-localhost/credsync:e2e-podman}"
export CREDSYNC_PODMAN_APP_IMAGE="${CREDSYNC_PODMAN_APP_IMAGE:-localhost/credsync-e2e-app:e2e-podman}"
# Every pod the test plays is named with this prefix (the cleanup's filter).
export CREDSYNC_PODMAN_POD_PREFIX="${CREDSYNC_PODMAN_POD_PREFIX:-credsync-e2e-podman}"

skip() {
  echo "e2e_podman_pod: SKIPPED: $*"
  exit 77
}
die() {
  echo "e2e_podman_pod: $*" >&2
  exit 1
}

# Inside the network namespace: loopback up, then the Node suite (with the
# emulator's PKI bootstrapped by the e2e runner).
if [[ "${1:-}" == "--inside" ]]; then
  shift
  ip link set lo up
  status=0
  for file in "$@"; do
    "${repo}/tests/e2e/node/run.sh" "${CREDSYNC_EMULATOR}" "${file}" || status=$?
  done
  exit "${status}"
fi

[[ "$(id -u)" -eq 0 ]] || skip "needs root (podman's storage, kube play, mounts); run as root"
[[ -n "${CREDSYNC_EMULATOR:-}" && -x "${CREDSYNC_EMULATOR}" ]] \
  || die "CREDSYNC_EMULATOR=${CREDSYNC_EMULATOR:-} is not the credsync-emulator binary"
command -v ip >/dev/null || die "ip (iproute2) is needed to bring up the namespace's loopback"
"${repo}/tests/e2e/node/run.sh" --check-deps >/dev/null || die "node or node_modules is not ready (see above)"
export CREDSYNC_EMULATOR="$(readlink -f "${CREDSYNC_EMULATOR}")"
if [[ $# -eq 0 ]]; then
  set -- "${here}/podman_pod.test.mjs" "${here}/injected_pod.test.mjs"
fi
# The injected pod's review is answered by the credsync of this tree.
if [[ " $* " == *injected_pod.test.mjs* ]]; then
  [[ -n "${CREDSYNC_BIN:-}" && -x "${CREDSYNC_BIN}" ]] || die "CREDSYNC_BIN=${CREDSYNC_BIN:-} is not the credsync binary"
  export CREDSYNC_BIN="$(readlink -f "${CREDSYNC_BIN}")"
fi
export CREDSYNC_E2E_LOG_DIR="${CREDSYNC_E2E_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/credsync-podman-logs.XXXXXX")}"
mkdir -p "${CREDSYNC_E2E_LOG_DIR}"

work="$(mktemp -d "${TMPDIR:-/tmp}/credsync-podman.XXXXXX")"
export CREDSYNC_PODMAN_WORK="${work}"
cleanup() {
  local status=$? pod
  # Best effort, every step: a step that finds nothing must not end the rest.
  set +e
  for pod in $(podman pod ls --format '{{.Name}}' 2>/dev/null | grep "^${CREDSYNC_PODMAN_POD_PREFIX}" || true); do
    podman pod rm --force --time 0 "${pod}" >/dev/null 2>&1 || echo "e2e_podman_pod: could not remove pod ${pod}" >&2
  done
  # The test mounts its in-memory volumes under work/; never rm -r a mount.
  findmnt -rno TARGET | grep "^${work}/" | sort -r | while read -r target; do umount "${target}" || true; done
  if ! findmnt -rno TARGET | grep -q "^${work}/"; then rm -rf "${work}"; fi
  podman rmi --force "${CREDSYNC_PODMAN_IMAGE}" "${CREDSYNC_PODMAN_APP_IMAGE}" >/dev/null 2>&1
  exit "${status}"
}
trap cleanup EXIT

echo "e2e_podman_pod: building ${CREDSYNC_PODMAN_IMAGE} (scripts/image.sh)"
started=$SECONDS
"${repo}/scripts/image.sh" --tag "${CREDSYNC_PODMAN_IMAGE}" >"${CREDSYNC_E2E_LOG_DIR}/image-build.log" 2>&1 \
  || die "scripts/image.sh failed: $(tail -n 30 "${CREDSYNC_E2E_LOG_DIR}/image-build.log")"
grep '^image: ' "${CREDSYNC_E2E_LOG_DIR}/image-build.log" || true

# The app image's context: node_modules with only what the app loads, the
# proto and the app's modules at their repository paths.
context="${work}/app-context"
node "${here}/app_context.mjs" "${context}" \
  || die "could not prepare the app image's context in ${context}"
echo "e2e_podman_pod: building ${CREDSYNC_PODMAN_APP_IMAGE} (app/Containerfile)"
podman build --network=host --layers -f "${here}/app/Containerfile" -t "${CREDSYNC_PODMAN_APP_IMAGE}" \
  "${context}" >"${CREDSYNC_E2E_LOG_DIR}/app-build.log" 2>&1 \
  || die "building the app image failed: $(tail -n 30 "${CREDSYNC_E2E_LOG_DIR}/app-build.log")"
echo "e2e_podman_pod: images ready in $((SECONDS - started)) s; logs in ${CREDSYNC_E2E_LOG_DIR}"

status=0
unshare --net -- "${BASH_SOURCE[0]}" --inside "$@" || status=$?
if [[ ${status} -ne 0 ]]; then
  echo "e2e_podman_pod: failed (${status}); logs in ${CREDSYNC_E2E_LOG_DIR}" >&2
fi
exit "${status}"
