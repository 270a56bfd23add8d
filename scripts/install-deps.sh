#!/usr/bin/env bash
# Installs everything credsync needs to build and test on Debian bookworm:
# Debian packages (compilers, gRPC, abseil, curl, OpenSSL, GoogleTest, ...)
# and the pinned npm packages of package-lock.json. Needs root for apt-get.
# apt-get runs only when a package is missing, or always with FORCE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates openssl unzip procps
  clang libclang-rt-14-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libcurl4-openssl-dev libssl-dev libcpp-httplib-dev nlohmann-json3-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev
  python3 python3-grpcio python3-protobuf
)
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
