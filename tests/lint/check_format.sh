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
unformatted=()
for file in "${files[@]}"; do
  clang-format --dry-run --Werror "$file" >/dev/null 2>&1 || unformatted+=("$file")
done
if [[ ${#unformatted[@]} -gt 0 ]]; then
  echo "FAIL: not formatted as .clang-format says (clang-format -i): ${unformatted[*]}" >&2
  exit 1
fi
echo "ok: ${#files[@]} C++ files formatted as .clang-format says"
