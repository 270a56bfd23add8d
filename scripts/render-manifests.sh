#!/usr/bin/env bash
# Renders the plain manifests for users without Helm from the chart:
#   deploy/manifests/credsync.yaml  <- charts/credsync + deploy/manifests/values.yaml
# tests/chart checks that the committed file matches (`--check`).
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
  echo "# Apply with: kubectl apply -n <namespace> -f credsync.yaml"
  "${repo}/scripts/helm.sh" template credsync "${repo}/charts/credsync" \
    --namespace default --kube-version 1.29.0 -f "${repo}/deploy/manifests/values.yaml"
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
