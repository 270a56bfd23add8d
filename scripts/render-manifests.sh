#!/usr/bin/env bash
# Renders the plain manifests for users without Helm from the chart:
#   deploy/manifests/credsync.yaml  <- charts/credsync + deploy/manifests/values.yaml
# without a namespace, so `kubectl apply -n NS` and kustomize's `namespace:`
# (deploy/kustomize) place them. tests/chart checks that the committed file
# matches (`--check`).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${repo}/deploy/manifests/credsync.yaml"

# The values fix sidecar.mode=native; --kube-version makes the render the
# same whatever Kubernetes version this helm assumes by default.
render() {
  echo "# Rendered by scripts/render-manifests.sh from charts/credsync with"
  echo "# deploy/manifests/values.yaml; do not edit by hand in this repository."
  echo "# Needs Kubernetes 1.29+ (credsync is a native sidecar); for an older"
  echo "# cluster render the chart with sidecar.mode=classic."
  echo "# Apply with: kubectl apply -n <namespace> -f credsync.yaml, or build on"
  echo "# the kustomize base in deploy/kustomize/base."
  # The chart puts .Release.Namespace into each object's metadata; these
  # manifests carry none (a metadata-level line, two spaces in). A
  # placeholder left anywhere else would be a namespace baked in: refuse.
  local text
  text="$("${repo}/scripts/helm.sh" template credsync "${repo}/charts/credsync" \
    --namespace credsync-render-placeholder --kube-version 1.29.0 \
    -f "${repo}/deploy/manifests/values.yaml" |
    grep -v '^  namespace: credsync-render-placeholder$')"
  if grep -q credsync-render-placeholder <<<"$text"; then
    echo "render-manifests: the chart uses the namespace outside metadata.namespace" >&2
    return 1
  fi
  printf '%s\n' "$text"
}

if [[ "${1:-}" == "--check" ]]; then
  if ! diff -u "$out" <(render) >&2; then
    echo "render-manifests: ${out} is stale: run scripts/render-manifests.sh" >&2
    exit 1
  fi
  echo "render-manifests: ${out} is current"
  exit 0
fi
render > "${out}.tmp"
mv "${out}.tmp" "$out"
echo "render-manifests: wrote ${out}"
