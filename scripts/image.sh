#!/usr/bin/env bash
# Builds credsync's container image from deploy/Dockerfile with podman, on a
# Debian bookworm machine that reaches Debian's mirror but no container
# registry (as root):
#
#   scripts/image.sh [build] [--tag NAME]
#                                     build (default NAME credsync:<version>),
#                                     self-check, print the image's size
#   scripts/image.sh base [--slim]    only bootstrap the base image (with
#                                     --slim also debian:bookworm-slim, for
#                                     bench/image_size.sh)
#   scripts/image.sh run ARGS...      podman with the project's settings
#
# Installs podman and its helpers when missing. The base image the Dockerfile
# names (debian:bookworm) is bootstrapped from Debian's packages with
# mmdebstrap, from this machine's own apt sources, and imported under that
# name, so the same Dockerfile builds unchanged with Docker against the public
# image elsewhere. The bootstrap is cached in $CREDSYNC_IMAGE_CACHE
# (/var/cache/credsync-image) and renewed after $CREDSYNC_BASE_MAX_AGE_DAYS
# (7) days; the build stage runs apt-get update in any case.
#
# podman runs with scripts/podman/containers.conf (CONTAINERS_CONF): runc, and
# ulimits within the machine's hard limits. Builds use the host network
# (bridge networking needs netavark, which bookworm's podman lacks).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

export CONTAINERS_CONF="${CONTAINERS_CONF:-$repo/scripts/podman/containers.conf}"
cache="${CREDSYNC_IMAGE_CACHE:-/var/cache/credsync-image}"
max_age_days="${CREDSYNC_BASE_MAX_AGE_DAYS:-7}"
base_image=docker.io/library/debian:bookworm
version="$(sed -n -E 's/^project\(credsync VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)"

die() {
  echo "image: $*" >&2
  exit 1
}
# The header comment of this file.
usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }

ensure_tools() {
  local missing=() package
  # shellcheck source=scripts/packages.sh
  . scripts/packages.sh
  for package in $CREDSYNC_IMAGE_PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]}; run as root"
  echo "image: apt-get install ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The apt sources of this machine, for mmdebstrap: the bootstrap uses the
# same mirror (and suites) as the host.
apt_sources() {
  local file
  for file in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [[ -s "$file" ]] && grep -Eq '^[[:space:]]*(deb |Types:)' "$file"; then
      echo "$file"
      return 0
    fi
  done
  die "no Debian apt sources on this machine (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)"
}

# Bootstraps Debian bookworm (minbase) into a cached tarball and imports it
# as IMAGE; EXTRA mmdebstrap options (the slim variant's path excludes).
bootstrap_base() {
  local image="$1" name="$2" fresh=1
  shift 2
  local tar="$cache/$name.tar"
  mkdir -p "$cache"
  if [[ ! -s "$tar" ]] || [[ -n "$(find "$tar" -mtime "+$max_age_days" 2>/dev/null)" ]]; then
    echo "image: bootstrapping Debian bookworm ($name) into $tar"
    local started=$SECONDS
    local partial="$cache/$name.partial.tar"
    rm -rf "$partial" "$tar"
    mmdebstrap --quiet --format=tar --variant=minbase "$@" bookworm "$partial" "$(apt_sources)"
    mv "$partial" "$tar"
    echo "image: bootstrap took $((SECONDS - started)) s"
    fresh=0
  fi
  if [[ $fresh -eq 0 ]] || ! podman image exists "$image"; then
    # Without PATH in the image config nothing finds sh.
    podman import --quiet \
      --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD=["bash"]' "$tar" "$image" >/dev/null
    echo "image: $image imported from $tar"
  fi
}

ensure_base() {
  bootstrap_base "$base_image" debian-bookworm-minbase --include=ca-certificates
  if [[ "${1:-}" == --slim ]]; then
    # What the official bookworm-slim leaves out (debuerreotype's slimify):
    # documentation but the copyright files, man and info pages, locales.
    bootstrap_base docker.io/library/debian:bookworm-slim debian-bookworm-slim \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/groff/*' \
      --dpkgopt='path-exclude=/usr/share/lintian/*' --dpkgopt='path-exclude=/usr/share/linda/*'
  fi
}

build() {
  local tag="credsync:$version"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --tag) [[ $# -ge 2 ]] || die "--tag: needs a name"; tag="$2"; shift 2 ;;
      --help|-h) usage; exit 0 ;;
      *) die "unknown argument '$1' (see --help)" ;;
    esac
  done
  ensure_tools
  ensure_base
  local revision started=$SECONDS
  revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "image: podman build -f deploy/Dockerfile -t $tag"
  podman build --network=host --layers -f deploy/Dockerfile -t "$tag" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" .
  echo "image: build took $((SECONDS - started)) s"
  # Each build of a changed tree leaves its build stage behind as an untagged
  # image (about 0.9 GB): keep the newest few (the cache of the next build),
  # drop the rest.
  podman images --filter dangling=true --sort created --format '{{.ID}}' | tail -n +4 |
    xargs -r podman rmi --force >/dev/null 2>&1 || true
  # The image's own self-check, as a pod runs it: its user, read-only root,
  # no network.
  podman run --rm --read-only --network=none "$tag" version
  local size
  size="$(podman image inspect --format '{{.Size}}' "$tag")"
  printf 'image: %s is %s bytes (%s MB) uncompressed\n' "$tag" "$size" \
    "$(awk -v s="$size" 'BEGIN {printf "%.1f", s / 1e6}')"
}

case "${1:-}" in
  base) ensure_tools; ensure_base "${2:-}" ;;
  run) shift; ensure_tools; exec podman "$@" ;;
  build) shift; build "$@" ;;
  --help|-h) usage ;;
  *) build "$@" ;;
esac
