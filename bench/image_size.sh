#!/usr/bin/env bash
# The image's size (a benchmark figure, never asserted): the credsync image
# built by scripts/image.sh (FROM scratch: the binary and its ldd closure),
# beside the same binary on debian:bookworm-slim with its libraries' packages
# installed by apt (bench/image/slim.Containerfile), and the slim base alone.
# Both bases are bootstrapped from Debian's packages (scripts/image.sh base
# --slim), so the comparison is like for like on this machine.
#
#   bench/image_size.sh        (as root; a few minutes the first time)
#
# Prints one line per image and one JSON object for docs/performance.md.
set -euo pipefail
if [[ "${1:-}" == --help || "${1:-}" == -h ]]; then
  sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
  exit 0
fi
[[ $# -eq 0 ]] || { echo "image_size: takes no arguments (see --help)" >&2; exit 2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$repo/scripts/podman/containers.conf}"
scratch_tag=localhost/credsync:bench-image-size
slim_tag=localhost/credsync-on-slim:bench-image-size
trap 'podman rmi --force "$scratch_tag" "$slim_tag" >/dev/null 2>&1 || true' EXIT

scripts/image.sh base --slim
scripts/image.sh --tag "$scratch_tag" | grep '^image: '
podman build --quiet --network=host -f bench/image/slim.Containerfile \
  --build-arg "CREDSYNC_IMAGE=$scratch_tag" -t "$slim_tag" . >/dev/null
podman run --rm --read-only --network=none "$slim_tag" version >/dev/null

size() { podman image inspect --format '{{.Size}}' "$1"; }
mb() { awk -v s="$1" 'BEGIN {printf "%.1f", s / 1e6}'; }
scratch=$(size "$scratch_tag")
slim=$(size "$slim_tag")
base=$(size docker.io/library/debian:bookworm-slim)
printf 'credsync image (FROM scratch):         %6s MB\n' "$(mb "$scratch")"
printf 'credsync on bookworm-slim (apt):       %6s MB\n' "$(mb "$slim")"
printf 'bookworm-slim base alone:              %6s MB\n' "$(mb "$base")"
printf '{"scratch_bytes":%s,"slim_bytes":%s,"slim_base_bytes":%s,"ratio":%s}\n' "$scratch" "$slim" "$base" \
  "$(awk -v a="$slim" -v b="$scratch" 'BEGIN {printf "%.2f", a / b}')"
