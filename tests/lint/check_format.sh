#!/usr/bin/env bash
# Every C++ file of the project is formatted as .clang-format says (ctest:
# lint_format). Fix with: clang-format -i FILE (Debian bookworm's
# clang-format 14, as CI uses). Skipped (77) without clang-format.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed"; exit 77; }
if git rev-parse --git-dir >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files 'sidecar/*.cc' 'sidecar/*.h' 'tests/*.cc' 'tests/*.h' 'bench/*.cc' 'bench/*.h')
else
  mapfile -t files < <(find sidecar tests bench -name '*.cc' -o -name '*.h' | grep -v node_modules)
fi
# Many files per clang-format process, a process per core: starting one per
# file cost most of this test's 40 s. --Werror makes each unformatted file
# print "FILE:LINE:COL: error: code should be clang-formatted"; any other
# failure (clang-format itself refusing) fails the check too.
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
status=0
printf '%s\0' "${files[@]}" |
  xargs -0 -P "$(nproc)" -n 64 clang-format --dry-run --Werror 2>"$report" >/dev/null || status=$?
mapfile -t unformatted < <(
  sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' "$report" | sort -u)
if [[ $status -ne 0 && ${#unformatted[@]} -eq 0 ]]; then
  echo "FAIL: clang-format failed (exit $status): $(head -3 "$report")" >&2
  exit 1
fi
if [[ ${#unformatted[@]} -gt 0 ]]; then
  echo "FAIL: not formatted as .clang-format says (clang-format -i): ${unformatted[*]}" >&2
  exit 1
fi
echo "ok: ${#files[@]} C++ files formatted as .clang-format says"
