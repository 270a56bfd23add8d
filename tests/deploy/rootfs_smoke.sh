#!/usr/bin/env bash
# Runs the credsync binary the way the image and the chart run it, without
# Docker: in new mount, pid and network namespaces, chrooted into a read-only
# bind of /, as uid/gid 65532 with no capabilities, with tmpfs only at
# /var/run/credsync (the shared volume, owned by 65532) and /tmp. It checks
# `credsync version`, `credsync validate` and `credsync run` (up to a live
# control socket and a clean SIGTERM exit) there: the binary needs no writable
# path outside its volume and no root.
#
#   rootfs_smoke.sh CREDSYNC_BINARY        (ctest: deploy_rootfs_smoke)
#
# Needs root and unshare/setpriv from util-linux; exits 77 (skipped) without.
set -euo pipefail

skip() {
  echo "SKIP: $*"
  exit 77
}
die() {
  echo "FAIL: $*" >&2
  exit 1
}

[[ $# -eq 1 ]] || die "usage: rootfs_smoke.sh CREDSYNC_BINARY"
binary="$(readlink -f "$1")"
[[ -x "$binary" ]] || die "$1 is not an executable (build the credsync target)"
[[ $(id -u) -eq 0 ]] || skip "needs root to create mount namespaces, chroot and change uid"
for tool in unshare setpriv chroot mount findmnt timeout; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (util-linux, coreutils)"
done
unshare --mount --pid --net --fork --propagation private true 2>/dev/null \
  || skip "unshare cannot create mount+pid+net namespaces here"

work="$(mktemp -d "${TMPDIR:-/tmp}/credsync-rootfs.XXXXXX")"
mkdir "$work/root" "$work/config" "$work/logs"
# rmdir, never rm -r, on the new root's mountpoint: it is only ever mounted on
# inside the (private) namespace, and rmdir fails safely if it is not empty.
trap 'rm -rf "$work/config" "$work/logs"; rmdir "$work/root" "$work"' EXIT

# A pod-like config: RRSA identity, KMS and STS on loopback (unreachable in
# the empty network namespace, so `run` keeps retrying), output to the volume.
cat >"$work/config/config.yaml" <<'EOF'
kms:
  region: cn-hangzhou
  endpoints: ["127.0.0.1:1"]
profiles:
  - name: default
    secret_name: acs/ram/user/rootfs-smoke
output:
  directory: /var/run/credsync
log:
  level: debug
EOF
echo "not-a-real-token" >"$work/config/token"
chmod 0644 "$work/config/config.yaml" "$work/config/token"

export CREDSYNC_SMOKE_BINARY="$binary" CREDSYNC_SMOKE_WORK="$work"
# shellcheck disable=SC2016 # expanded by the inner shell
unshare --mount --pid --net --fork --propagation private bash -c '
set -euo pipefail
die() { echo "FAIL: $*" >&2; exit 1; }
binary=$CREDSYNC_SMOKE_BINARY
work=$CREDSYNC_SMOKE_WORK
root=$work/root

mount --make-rprivate /
mount --rbind / "$root"
# The root file system (which holds the binary and the config) read-only,
# and best effort every other mount under it except the kernel ones.
mount -o remount,bind,ro "$root"
findmnt -rno TARGET -R "$root" | while read -r target; do
  case "$target" in "$root"|"$root"/proc*|"$root"/sys*|"$root"/dev*) continue ;; esac
  mount -o remount,bind,ro "$target" 2>/dev/null || true
done
[[ ",$(findmnt -no OPTIONS "$root")," == *,ro,* ]] || die "could not make the new root read-only"

# /run (= /var/run): a root-owned read-only tmpfs holding the volume (tmpfs,
# owned by 65532 as with fsGroup) and the config (a read-only bind, like a
# ConfigMap). /tmp: tmpfs.
mount -t tmpfs -o mode=0755,size=1m tmpfs "$root/run"
mkdir "$root/run/credsync" "$root/run/config" "$root/run/bin"
# The binary at a fixed path inside the sandbox, as the image has it at
# /usr/local/bin: the build tree may sit under /tmp, which the sandbox hides.
touch "$root/run/bin/credsync"
mount --bind "$binary" "$root/run/bin/credsync"
mount -o remount,bind,ro "$root/run/bin/credsync"
mount -t tmpfs -o uid=65532,gid=65532,mode=0750,size=16m tmpfs "$root/run/credsync"
mount --bind "$work/config" "$root/run/config"
mount -o remount,bind,ro "$root/run/config"
mount -o remount,bind,ro "$root/run"
mount -t tmpfs -o mode=1777,size=16m tmpfs "$root/tmp"
mount -t proc proc "$root/proc"

# As the image runs it: uid/gid 65532, no groups, no capabilities, no new
# privileges, an environment with only the RRSA variables; killed after 60 s.
user_command=(timeout 60 chroot "$root" setpriv --reuid 65532 --regid 65532 --clear-groups
  --no-new-privs --inh-caps=-all --bounding-set=-all
  env -i PATH=/usr/bin:/bin HOME=/nonexistent
  ALIBABA_CLOUD_ROLE_ARN=acs:ram::1234567890123456:role/rootfs-smoke
  ALIBABA_CLOUD_OIDC_PROVIDER_ARN=acs:ram::1234567890123456:oidc-provider/rootfs-smoke
  ALIBABA_CLOUD_OIDC_TOKEN_FILE=/run/config/token
  ALIBABA_CLOUD_STS_ENDPOINT=127.0.0.1:1
  /run/bin/credsync)
as_user() { "${user_command[@]}" "$@"; }
config=/run/config/config.yaml

# The sandbox really is read-only outside the volume and /tmp.
chroot "$root" setpriv --reuid 65532 --regid 65532 --clear-groups sh -c \
  "touch /run/credsync/.probe && rm /run/credsync/.probe" || die "uid 65532 cannot write its volume"
if chroot "$root" touch /usr/.rootfs-smoke 2>/dev/null; then
  die "root could write to /usr: the new root is not read-only"
fi

out=$(as_user version) || die "credsync version failed as uid 65532 on a read-only root"
[[ "$out" == credsync\ * ]] || die "credsync version printed \"$out\""
echo "ok: $out (uid 65532, read-only root)"

out=$(as_user validate --config "$config" 2>&1) \
  || die "credsync validate failed as uid 65532 on a read-only root: $out"
echo "ok: validate: $out"

# run: starts, serves the control socket in the volume, answers the liveness
# probe, stops cleanly on SIGTERM. KMS is unreachable, so it never gets ready.
# Started directly (not through the function) so that $! is timeout, which
# passes SIGTERM on to credsync.
"${user_command[@]}" run --config "$config" >"$work/logs/run.stdout" 2>"$work/logs/run.stderr" &
pid=$!
socket=/run/credsync/credsync.sock
for _ in $(seq 1 200); do
  [[ -S "$root$socket" ]] && break
  kill -0 "$pid" 2>/dev/null || die "credsync run exited early: $(tail -n 20 "$work/logs/run.stderr")"
  sleep 0.05
done
[[ -S "$root$socket" ]] || die "credsync run made no socket $socket in 10 s: $(tail -n 20 "$work/logs/run.stderr")"
out=$(as_user probe live --socket "$socket" 2>&1) \
  || die "credsync probe live failed against run: $out; run log: $(tail -n 20 "$work/logs/run.stderr")"
echo "ok: run serves $socket; probe live: $out"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[[ $status -eq 0 ]] || die "credsync run exited $status on SIGTERM: $(tail -n 20 "$work/logs/run.stderr")"
if grep -Ei "read-only file system|permission denied" "$work/logs/run.stderr"; then
  die "credsync run tried to write outside its volume (above)"
fi
echo "ok: run stopped cleanly on SIGTERM"
written=$(cd "$root/run/credsync" && ls -A)
echo "ok: the volume holds: ${written:-(nothing)}"
'
echo "PASS: credsync runs as uid 65532 on a read-only root with only its volume and /tmp writable"
