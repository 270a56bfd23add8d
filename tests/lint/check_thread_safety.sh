#!/usr/bin/env bash
# Shows that clang's thread-safety analysis is live for credsync's lock types
# (ctest: lint_thread_safety): tests/lint/thread_safety_probe.cc must compile
# with -Wthread-safety -Werror, and must fail to once it reads a guarded field
# without its lock. The clang tree (scripts/build.sh fuzz) builds every
# library and the binary with the same flags; this proves those flags catch
# what they are meant to. Skipped (77) without clang++.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
command -v clang++ >/dev/null || { echo "SKIP: clang++ is not installed"; exit 77; }
flags=(-std=c++20 -fsyntax-only -Wthread-safety -Werror -I "$repo")
probe="$repo/tests/lint/thread_safety_probe.cc"
if ! out=$(clang++ "${flags[@]}" "$probe" 2>&1); then
  echo "FAIL: the correct probe does not compile: $out" >&2
  exit 1
fi
if out=$(clang++ "${flags[@]}" -DCREDSYNC_PROBE_VIOLATION "$probe" 2>&1); then
  echo "FAIL: reading a guarded field without its lock compiled: -Wthread-safety checks nothing" >&2
  exit 1
fi
if ! grep -q "requires holding mutex 'mutex_'" <<<"$out"; then
  echo "FAIL: the violation failed for another reason: $out" >&2
  exit 1
fi
echo "ok: -Wthread-safety -Werror refuses a guarded read without the lock: $(grep -m1 'error:' <<<"$out")"
