#!/usr/bin/env bash
# clang-tidy with the checked-in .clang-tidy over every source file of
# sidecar/, with the compile commands of a clang tree (scripts/test.sh runs
# it after building build/fuzz, whose generated proto headers it needs):
#
#   tests/lint/check_tidy.sh [BUILD_DIR]      (default build/fuzz)
#
# Any warning fails. Fix it, or, where a check is wrong for this code, turn
# it off in .clang-tidy with the reason, or mark the line
# NOLINT(check-name) with a comment saying why. Skipped (77) without
# clang-tidy.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
build="${1:-build/fuzz}"
command -v clang-tidy >/dev/null || { echo "SKIP: clang-tidy is not installed"; exit 77; }
[[ -f "$build/compile_commands.json" ]] \
  || { echo "FAIL: $build/compile_commands.json is missing: scripts/build.sh fuzz credsync first" >&2; exit 1; }
if git rev-parse --git-dir >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files 'sidecar/*.cc')
else
  mapfile -t files < <(find sidecar -name '*.cc')
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet >"$out" 2>/dev/null || true
if grep -Eq '(warning|error): ' "$out"; then
  grep -E -A3 '(warning|error): ' "$out" >&2
  echo "FAIL: clang-tidy: $(grep -Ec '(warning|error): ' "$out") finding(s) (above)" >&2
  exit 1
fi
echo "ok: clang-tidy finds nothing in ${#files[@]} files of sidecar/"
