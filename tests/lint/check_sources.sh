#!/usr/bin/env bash
# Source rules a compiler does not check (style.md):
#  - production code reads clocks only in sidecar/common/clock.cc, so every
#    schedule, backoff and expiry is testable with simulated time;
#  - CURLOPT_VERBOSE never appears (curl would print headers with tokens);
#  - no strerror in sidecar code (errnoText() is thread-safe);
#  - sidecar and its unit tests lock with credsync::Mutex & co.
#    (sidecar/common/mutex.h), which the TSan tree can see, never absl::Mutex.
set -euo pipefail
cd "$(dirname "$0")/../.."
status=0
clock_reads=$(grep -rnE '(system_clock|steady_clock)::now' sidecar --include='*.cc' --include='*.h' \
  | grep -v '^sidecar/common/clock\.cc:' || true)
if [[ -n "$clock_reads" ]]; then
  echo "direct clock reads outside sidecar/common/clock.cc (inject a TimeSource):"
  echo "$clock_reads"
  status=1
fi
verbose=$(grep -rn 'CURLOPT_VERBOSE' sidecar || true)
if [[ -n "$verbose" ]]; then
  echo "CURLOPT_VERBOSE in sidecar code (curl prints headers, which carry tokens):"
  echo "$verbose"
  status=1
fi
absl_sync=$(grep -rnE 'absl::(Mutex|MutexLock|CondVar|Condition|Notification)\b' \
  sidecar tests/common tests/unit --include='*.cc' --include='*.h' \
  | grep -vE '^(sidecar/common/mutex\.h|tests/unit/emulator/)' || true)
if [[ -n "$absl_sync" ]]; then
  echo "absl synchronisation outside sidecar/common/mutex.h (use credsync::Mutex & co.):"
  echo "$absl_sync"
  status=1
fi
strerror_calls=$(grep -rnE '(^|[^a-z_])strerror\(' sidecar --include='*.cc' --include='*.h' || true)
if [[ -n "$strerror_calls" ]]; then
  echo "strerror in sidecar code (it may share a buffer between threads; use errnoText()):"
  echo "$strerror_calls"
  status=1
fi
[[ $status -eq 0 ]] && echo "source rules hold"
exit $status
