# shellcheck shell=sh disable=SC2034 # the lists are read by whoever sources this file
# The Debian bookworm packages credsync needs, in one place. POSIX sh (no
# arrays), because two shells read it:
#   scripts/install-deps.sh   (bash) installs both lists on a developer or CI machine;
#   deploy/Dockerfile         (/bin/sh in the build stage) installs the build list.
# tests/deploy/check_runtime_deps.sh checks that the build list covers every
# find_package() of CMakeLists.txt. The image's runtime libraries are listed in
# deploy/Dockerfile itself, where the same test checks them against `ldd`.

# What configuring CMakeLists.txt and building the credsync binary need.
# GoogleTest is here because the top-level find_package(GTest) is REQUIRED.
CREDSYNC_BUILD_PACKAGES="build-essential cmake ninja-build pkg-config
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libcurl4-openssl-dev libssl-dev libcpp-httplib-dev nlohmann-json3-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev"

# What the tests, the fuzz build, the demo and the tooling add: git, the
# emulator's openssl CLI checks, unzip for helm (scripts/helm.sh), ps,
# clang with libFuzzer, Python's gRPC for the e2e client.
# (Node.js and npm are added by install-deps.sh only when node is missing.)
CREDSYNC_DEV_PACKAGES="git ca-certificates openssl unzip procps
  clang libclang-rt-14-dev clang-format clang-tidy
  python3 python3-grpcio python3-protobuf"

# What building and running the container image needs (scripts/image.sh,
# tests/e2e/podman): podman with runc (crun fails on cgroups in hybrid mode),
# catatonit for its pause process, mmdebstrap to bootstrap the Debian base
# image without a registry, uidmap and fuse-overlayfs for its storage.
CREDSYNC_IMAGE_PACKAGES="podman runc catatonit mmdebstrap uidmap fuse-overlayfs"
