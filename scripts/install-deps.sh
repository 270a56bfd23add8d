#!/usr/bin/env bash
# Installs everything credsync needs to build and test on Debian bookworm:
# Debian packages (compilers, gRPC, abseil, curl, OpenSSL, GoogleTest, ...)
# and the pinned npm packages of package-lock.json. Needs root for apt-get.
# apt-get runs only when a package is missing, or always with FORCE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

# The lists live in scripts/packages.sh, shared with deploy/Dockerfile.
. scripts/packages.sh
# shellcheck disable=SC2206 # word splitting of the space-separated lists is intended
packages=($CREDSYNC_BUILD_PACKAGES $CREDSYNC_DEV_PACKAGES $CREDSYNC_IMAGE_PACKAGES)
# Node.js may come from Debian or from elsewhere with its own npm (NodeSource
# ships both in one "nodejs" package that conflicts with Debian's "npm").
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [[ ${#missing[@]} -gt 0 || "${FORCE:-0}" == 1 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run as root (or with sudo)" >&2
    exit 1
  fi
  echo "install-deps: apt-get install ${missing[*]:-(forced)}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules || "${FORCE:-0}" == 1 ]]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules
fi
