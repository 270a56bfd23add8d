#!/usr/bin/env bash
# Checks deploy/Dockerfile without Docker (ctest: deploy_runtime_deps):
#
# 1. The runtime root: deploy/image-root.sh (what the build stage runs)
#    assembles it from the built binary; every library `ldd` resolves is in
#    it, credsync is its only program (no shell, no package manager), it
#    declares its packages in /var/lib/dpkg/status.d and has the CA bundle;
#    as root with the release tree's binary, credsync runs in it (chroot) as
#    uid 65532.
# 2. Build packages: the build stage installs $CREDSYNC_BUILD_PACKAGES from
#    scripts/packages.sh, as scripts/install-deps.sh does; that list holds the
#    package behind every find_package()/pkg_check_modules() of the
#    CMakeLists.txt files; and, given a configured build tree, every library,
#    program and package config file CMake found on this machine belongs to
#    that list or to what it depends on.
# 3. Structure: a build stage on a pinned Debian tag, a runtime stage FROM
#    scratch that copies only the assembled root, no `latest`, no remote ADD,
#    exec-form RUN (no shell), ENTRYPOINT and CMD, USER 65532:65532, OCI
#    labels, no secrets; the build stage copies every directory CMake adds;
#    a root .dockerignore.
#
#   check_runtime_deps.sh CREDSYNC_BINARY REPO_DIR [BUILD_DIR]
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: check_runtime_deps.sh CREDSYNC_BINARY REPO_DIR [BUILD_DIR [static|shared]]" >&2; exit 2; }
binary="$1"
repo="$(cd "$2" && pwd)"
build_dir="${3:-}"
# static: the binary links gRPC, protobuf, abseil and yaml-cpp as the image
# does (CREDSYNC_STATIC_DEPS=ON); shared: a tree that links them shared.
link_mode="${4:-static}"
dockerfile="${repo}/deploy/Dockerfile"

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

for tool in ldd dpkg dpkg-query; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is needed (a Debian machine)" >&2; exit 1; }
done
[[ -x "$binary" ]] || { echo "FAIL: $binary is not an executable (build the credsync target)" >&2; exit 1; }
[[ -f "$dockerfile" ]] || { echo "FAIL: $dockerfile does not exist" >&2; exit 1; }

# --- the Dockerfile as logical instructions ---------------------------------
# One line per instruction, continuation lines joined; comment lines (also
# those inside a continuation, which Docker drops) removed; each prefixed
# with its stage number (1 = first FROM).
instructions="$(awk '
  function flush() { if (text != "") print stage "\t" text; text = "" }
  /^[[:space:]]*#/ { next }
  {
    line = $0
    continued = sub(/\\[[:space:]]*$/, "", line)
    if (text == "") {
      if (line ~ /^[[:space:]]*$/) next
      sub(/^[[:space:]]+/, "", line)
      if (toupper(line) ~ /^FROM[[:space:]]/) stage++
      text = line
    } else {
      text = text " " line
    }
    if (!continued) flush()
  }
  END { flush() }
' "$dockerfile")"
stages="$(awk -F'\t' '{print $1}' <<<"$instructions" | sort -un | tail -n 1)"
stage_text() { awk -F'\t' -v s="$1" '$1 == s {print $2}' <<<"$instructions"; }
build_stage="$(stage_text 1)"
final_stage="$(stage_text "$stages")"

# The package owning a file, from owners[] that lookup_owners fills with one
# call of deploy/image-root.sh --owners (the lookup the image build uses).
declare -A owners=()
lookup_owners() {
  local file package
  [[ $# -gt 0 ]] || return 0
  while IFS=$'\t' read -r file package; do
    [[ -n "$package" ]] && owners[$file]="$package"
  done < <("$repo/deploy/image-root.sh" --owners "$@")
}
owner_of() {
  [[ -n "${owners[$1]:-}" ]] && echo "${owners[$1]}"
}

# --- 1. the runtime root ------------------------------------------------------
# deploy/image-root.sh, as the build stage runs it, on this binary: every
# library ldd resolves is in the root at the path the loader looks it up by,
# nothing in it is a program but credsync (no shell, no package manager), and
# (root, a release tree) credsync runs in it as uid 65532 with nothing else.
root_work="$(mktemp -d "${TMPDIR:-/tmp}/credsync-image-root.XXXXXX")"
trap 'rm -rf "$root_work"' EXIT
image_root="$root_work/root"
if assembled="$("$repo/deploy/image-root.sh" "$binary" "$image_root" 2>&1)"; then
  ok "$assembled"
  ldd_output="$(ldd "$binary" 2>&1)"
  mapfile -t libraries < <(awk '/=>/ && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$ldd_output")
  missing=()
  for library in "${libraries[@]}"; do
    [[ -e "$image_root$library" ]] || missing+=("$library")
  done
  [[ ${#missing[@]} -eq 0 ]] || fail "the runtime root lacks libraries ldd resolves: ${missing[*]}"
  programs="$(find "$image_root" -type f -perm -u+x ! -name '*.so' ! -name '*.so.*' | sed "s|^$image_root||" | sort)"
  [[ "$programs" == "/usr/local/bin/credsync" ]] \
    || fail "the runtime root holds programs besides credsync: $(tr '\n' ' ' <<<"$programs")"
  for forbidden in /bin/sh /usr/bin/sh /bin/bash /usr/bin/apt-get /usr/bin/dpkg /var/lib/apt /var/lib/dpkg/status; do
    [[ ! -e "$image_root$forbidden" ]] || fail "the runtime root has $forbidden"
  done
  [[ -s "$image_root/etc/ssl/certs/ca-certificates.crt" ]] || fail "the runtime root has no CA bundle"
  [[ -s "$image_root/var/lib/dpkg/status.d/ca-certificates" ]] \
    || fail "the runtime root does not declare ca-certificates in /var/lib/dpkg/status.d"
  [[ "$(stat -c %u:%g "$image_root/run/credsync")" == 65532:65532 ]] || fail "/run/credsync is not owned by 65532"
  if [[ $(id -u) -eq 0 && "$link_mode" == static ]] && command -v chroot >/dev/null; then
    version="$(env -i "$(command -v chroot)" --userspec=65532:65532 "$image_root" /usr/local/bin/credsync version 2>&1)" \
      || fail "credsync does not run in the runtime root as uid 65532: $version"
    [[ "$version" == credsync\ * ]] && ok "credsync runs in the runtime root as uid 65532: $version"
  else
    echo "note: not run in the root (needs root and the release tree's binary)"
  fi
else
  fail "deploy/image-root.sh failed: $assembled"
fi

# --- 2. build packages --------------------------------------------------------
packages_sh="${repo}/scripts/packages.sh"
# shellcheck source=scripts/packages.sh
. "$packages_sh"
read -r -d '' -a build_packages <<<"$CREDSYNC_BUILD_PACKAGES" || true
declare -A build_set=()
for package in "${build_packages[@]}"; do build_set[$package]=1; done

grep -q 'COPY scripts/packages.sh ' <<<"$build_stage" \
  || fail "the build stage must COPY scripts/packages.sh (the one build package list)"
grep -Eq 'apt-get install .*--no-install-recommends .*\$\{?CREDSYNC_BUILD_PACKAGES' <<<"$build_stage" \
  || fail "the build stage must apt-get install --no-install-recommends \$CREDSYNC_BUILD_PACKAGES"
grep -Eq '^\. scripts/packages\.sh' "${repo}/scripts/install-deps.sh" \
  || fail "scripts/install-deps.sh must source scripts/packages.sh"
grep -q 'CREDSYNC_BUILD_PACKAGES' "${repo}/scripts/install-deps.sh" \
  || fail "scripts/install-deps.sh must install \$CREDSYNC_BUILD_PACKAGES"

# What each find_package()/pkg_check_modules() name needs from Debian. A new
# dependency fails here until it is added to this map and to scripts/packages.sh.
declare -A needs=(
  [Threads]="build-essential"
  [OpenSSL]="libssl-dev"
  [CURL]="libcurl4-openssl-dev"
  [absl]="libabsl-dev"
  [Protobuf]="libprotobuf-dev protobuf-compiler"
  [gRPC]="libgrpc++-dev libgrpc-dev protobuf-compiler-grpc"
  [nlohmann_json]="nlohmann-json3-dev"
  [yaml-cpp]="libyaml-cpp-dev"
  [GTest]="libgtest-dev libgmock-dev"
  [PkgConfig]="pkg-config"
  [cpp-httplib]="libcpp-httplib-dev"
)
# The compiler and the generator the Dockerfile uses.
required_build=(build-essential cmake ninja-build)
names=()
while IFS= read -r file; do
  while IFS= read -r name; do names+=("$name"); done < <(
    sed -n -E 's/^[[:space:]]*find_package\(([A-Za-z0-9_+-]+).*/\1/p' "$file"
    # pkg_check_modules(PREFIX [REQUIRED] [IMPORTED_TARGET] module...)
    sed -n -E 's/^[[:space:]]*pkg_check_modules\(([^)]*)\).*/\1/p' "$file" |
      awk '{for (i = 2; i <= NF; i++) if ($i !~ /^(REQUIRED|QUIET|IMPORTED_TARGET|GLOBAL|NO_CMAKE_PATH|NO_CMAKE_ENVIRONMENT_PATH)$/) print $i}' |
      sed -E 's/[<>=].*//')
done < <(find "$repo" \( -name 'build*' -o -name node_modules -o -name .git \) -prune -o \
           \( -name CMakeLists.txt -o -name '*.cmake' \) -print)
for name in $(printf '%s\n' "${names[@]}" | sort -u); do
  if [[ -z "${needs[$name]:-}" ]]; then
    fail "CMake looks for '$name': map it to its Debian package in tests/deploy/check_runtime_deps.sh and add that to scripts/packages.sh"
    continue
  fi
  read -r -a packages_for_name <<<"${needs[$name]}"
  required_build+=("${packages_for_name[@]}")
done
missing=()
for package in $(printf '%s\n' "${required_build[@]}" | sort -u); do
  [[ -n "${build_set[$package]:-}" ]] || missing+=("$package")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  fail "CREDSYNC_BUILD_PACKAGES (scripts/packages.sh) misses what CMakeLists.txt needs: ${missing[*]}"
else
  ok "the build stage's packages cover find_package/pkg_check_modules: $(printf '%s\n' "${names[@]}" | sort -u | tr '\n' ' ')"
fi

# The same, from what CMake actually found in a configured tree: every such
# file belongs to a build package or to one of their (installed) dependencies.
if [[ -n "$build_dir" && -f "${build_dir}/CMakeCache.txt" ]]; then
  declare -A closure=()
  queue=("${build_packages[@]}")
  while [[ ${#queue[@]} -gt 0 ]]; do
    package="${queue[0]}"
    queue=("${queue[@]:1}")
    [[ -n "${closure[$package]:-}" ]] && continue
    closure[$package]=1
    depends="$(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$package" 2>/dev/null)" || continue
    while IFS= read -r group; do
      # "a (>= 1) | b:any": the first installed alternative.
      for alternative in ${group//|/ }; do
        alternative="${alternative%%:*}"
        [[ "$alternative" =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || continue
        if dpkg-query -W -f='${Status}' "$alternative" 2>/dev/null | grep -q "ok installed"; then
          queue+=("$alternative")
          break
        fi
      done
    done < <(sed -E 's/\([^)]*\)//g' <<<"$depends" | tr ',' '\n')
  done
  outside=()
  checked=0
  cache_entries="$(grep -E '^[A-Za-z0-9_+-]+:(FILEPATH|PATH)=/usr/' "${build_dir}/CMakeCache.txt" |
                   grep -v '^CMAKE_' | grep -v '_INCLUDE_DIR:PATH=' || true)"
  mapfile -t cache_files < <(cut -d= -f2- <<<"$cache_entries")
  lookup_owners "${cache_files[@]}"
  while IFS='=' read -r key value; do
    [[ -n "$key" ]] || continue
    name="${key%%:*}"
    [[ "$name" == CMAKE_* || "$value" != /usr/* ]] && continue
    case "$key" in
      *:FILEPATH) file="$value" ;;
      *_DIR:PATH) [[ -d "$value" ]] || continue; file="$value" ;;
      *) continue ;;
    esac
    [[ "$key" == *_INCLUDE_DIR:PATH ]] && continue
    package="$(owner_of "$file")" || continue
    checked=$((checked + 1))
    [[ -n "${closure[$package]:-}" ]] || outside+=("$name=$value ($package)")
  done <<<"$cache_entries"
  if [[ ${#outside[@]} -gt 0 ]]; then
    fail "CMake found files from packages outside CREDSYNC_BUILD_PACKAGES and its dependencies:
$(printf '  %s\n' "${outside[@]}")"
  else
    ok "all $checked libraries, programs and config dirs in $(basename "$build_dir")/CMakeCache.txt come from the build packages (${#closure[@]} with dependencies)"
  fi
fi

# --- 3. structure -------------------------------------------------------------
[[ "$stages" == 2 ]] || fail "deploy/Dockerfile should have 2 stages (build, runtime), has ${stages}"
while IFS= read -r from; do
  image="$(awk '{print $2}' <<<"$from")"
  if [[ "$image" != *:* && "$image" != *@sha256:* && "$image" != scratch ]]; then
    fail "'$from': pin the base image by tag (and digest)"
  fi
  [[ "$image" == *:latest* ]] && fail "'$from': no 'latest' tags"
  [[ "$image" == debian:bookworm* || "$image" == scratch ]] \
    || fail "'$from': the build stage is Debian bookworm, the runtime stage scratch"
done < <(grep -iE '^FROM[[:space:]]' <<<"$(awk -F'\t' '{print $2}' <<<"$instructions")")
grep -Eqi '^ARG .*latest' <<<"$(awk -F'\t' '{print $2}' <<<"$instructions")" \
  && fail "no 'latest' tags (in ARG defaults either)"
grep -Eiq '^FROM debian:bookworm(@sha256:[0-9a-f]+)? AS build$' <<<"$build_stage" \
  || fail "the first stage must be 'FROM debian:bookworm AS build'"
grep -Eiq '^FROM scratch$' <<<"$final_stage" \
  || fail "the final stage must be 'FROM scratch' (only what deploy/image-root.sh assembles)"
grep -Eiq '^ADD[[:space:]].*(https?|ftp)://' <<<"$(awk -F'\t' '{print $2}' <<<"$instructions")" \
  && fail "no ADD of a URL: fetch with a checked download in a RUN, or better, use Debian packages"

# The build stage: every directory CMake adds, only the credsync target,
# the self-check.
while read -r dir; do
  grep -Eq "^COPY ${dir} ${dir}\$" <<<"$build_stage" \
    || fail "the build stage must 'COPY ${dir} ${dir}' (CMakeLists.txt has add_subdirectory(${dir}))"
done < <(sed -n -E 's/^add_subdirectory\(([A-Za-z0-9_./-]+)\).*/\1/p' "${repo}/CMakeLists.txt")
grep -Eq '^COPY CMakeLists.txt ' <<<"$build_stage" || fail "the build stage must COPY CMakeLists.txt"
grep -Eq 'cmake -S /src -B /src/build .*-DCREDSYNC_BUILD_TESTS=OFF' <<<"$build_stage" \
  || fail "the build stage must configure with -DCREDSYNC_BUILD_TESTS=OFF (it copies neither tests/ nor bench/)"
grep -Eq 'cmake -S /src -B /src/build .*-DCMAKE_BUILD_TYPE=Release' <<<"$build_stage" \
  || fail "the build stage must configure a Release tree in /src/build"
grep -Eq 'cmake --build /src/build --target credsync( |$)' <<<"$build_stage" \
  || fail "the build stage must build only the credsync target"
grep -Eq '/usr/local/bin/credsync version' <<<"$build_stage" \
  || fail "the build stage must run '/usr/local/bin/credsync version' as a self-check"
grep -Eq '^COPY deploy/image-root.sh ' <<<"$build_stage" \
  || fail "the build stage must COPY deploy/image-root.sh"
grep -Eq '^RUN image-root.sh /usr/local/bin/credsync /image-root$' <<<"$build_stage" \
  || fail "the build stage must assemble the runtime root: RUN image-root.sh /usr/local/bin/credsync /image-root"

# The runtime stage.
users="$(grep -E '^USER[[:space:]]' <<<"$final_stage" || true)"
[[ "$(tail -n 1 <<<"$users")" == "USER 65532:65532" ]] \
  || fail "the final stage must end as 'USER 65532:65532' (numeric, non-root), has: ${users:-no USER}"
grep -Eq '^RUN .*(useradd|adduser|groupadd|addgroup)' <<<"$final_stage" && fail "the final stage must create no users"
grep -Eq '^ENTRYPOINT \["/usr/local/bin/credsync"\]$' <<<"$final_stage" \
  || fail "the final stage must have the exec-form ENTRYPOINT [\"/usr/local/bin/credsync\"]"
grep -Eq '^CMD \["run", "--config", "/etc/credsync/config.yaml"\]$' <<<"$final_stage" \
  || fail "the final stage must have CMD [\"run\", \"--config\", \"/etc/credsync/config.yaml\"] (exec form)"
grep -Eq '^WORKDIR /$' <<<"$final_stage" || fail "the final stage must have WORKDIR /"
copies="$(grep -E '^(COPY|ADD)[[:space:]]' <<<"$final_stage" || true)"
[[ "$copies" == "COPY --from=build /image-root/ /" ]] \
  || fail "the final stage must copy only the assembled root from the build stage, copies: $copies"
# No shell in the image: every RUN of the final stage is exec form.
grep -E '^RUN ' <<<"$final_stage" | grep -Ev '^RUN \[' \
  && fail "the final stage has a shell-form RUN (the image has no shell)"
grep -Eq '^RUN \["/usr/local/bin/credsync", "version"\]$' <<<"$final_stage" \
  || fail "the final stage must self-check with RUN [\"/usr/local/bin/credsync\", \"version\"]"
grep -Eq '^ENV PATH=/usr/local/bin$' <<<"$final_stage" \
  || fail "the final stage must set ENV PATH=/usr/local/bin (exec probes name credsync without a path)"
for label in title description version revision; do
  grep -Eq "^LABEL .*org\.opencontainers\.image\.${label}=" <<<"$final_stage" \
    || fail "the final stage needs the label org.opencontainers.image.${label}"
done
project_version="$(sed -n -E 's/^project\(credsync VERSION ([0-9.]+).*/\1/p' "${repo}/CMakeLists.txt")"
grep -Eq "^ARG VERSION=${project_version//./\\.}$" <<<"$final_stage" \
  || fail "the image version (ARG VERSION) must default to the CMake project version ${project_version}"
grep -Eiq '^(ENV|ARG)[[:space:]]+[A-Z_]*(SECRET|PASSWORD|TOKEN|ACCESS_KEY|PRIVATE)' <<<"$(awk -F'\t' '{print $2}' <<<"$instructions")" \
  && fail "no secrets in ENV or ARG"
grep -Eiq '^COPY .*(\.pem|\.key|credentials|\.ini)( |$)' <<<"$(awk -F'\t' '{print $2}' <<<"$instructions")" \
  && fail "no keys, certificates or credentials copied into the image"

ignore="${repo}/.dockerignore"
if [[ -f "$ignore" ]]; then
  for pattern in build build-\* node_modules .git; do
    grep -qxF "$pattern" "$ignore" || fail ".dockerignore must list '$pattern'"
  done
else
  fail "no .dockerignore at the repository top (the build context): build trees and node_modules would be sent to the daemon"
fi

if [[ $failures -gt 0 ]]; then
  echo "deploy_runtime_deps: $failures failure(s)" >&2
  exit 1
fi
ok "deploy/Dockerfile structure (stages, pins, FROM scratch, USER 65532:65532, exec-form RUN/ENTRYPOINT/CMD, labels, no secrets, .dockerignore)"
