#!/usr/bin/env bash
# Builds the llmesh OCI image for amd64 and arm64 from the offline packages (npm run package) with
# podman, pulling nothing from an image registry: each architecture's base is Debian bookworm made
# by mmdebstrap (--variant=minbase, from Debian's package mirror) and `podman import`ed as
# localhost/llmesh-base:bookworm-<arch> (kept and reused; --rebuild-base makes it again), then the
# Containerfile beside this script installs that architecture's package into it. The images are
# <tag>-amd64 and <tag>-arm64, and <tag> is a manifest list of both (podman run picks the machine's).
#
#   packaging/container/build-image.sh [--arch amd64|arm64]... [--dist dir] [--tag name]
#                                      [--rebuild-base] [--save dir]
#
#   --arch          an architecture to build (repeatable; default both)
#   --dist          where the packages are (default dist/ of the repository)
#   --tag           image name (default localhost/llmesh:<version of package.json>)
#   --rebuild-base  make the Debian base again (else reused when present)
#   --save          also write <dir>/llmesh-<version>-oci.tar, an OCI archive of the manifest list and
#                   its images (podman load -i), and <dir>/SHA256SUMS of it, for the operator to sign
#                   like the packages (llmesh package sign <dir> --fleet <fleet>; a device checks it
#                   with llmesh verify <dir>/llmesh-<version>-oci.tar --trust-root <file>). A directory
#                   of its own, not dist/: that SHA256SUMS lists the archive alone.
#
# Needs root, podman and mmdebstrap (Debian packages); an arm64 image on an x64 machine also needs
# qemu-user-static, binfmt-support and arch-test (mmdebstrap and the Containerfile's RUN execute arm64 code).
set -euo pipefail

die() { echo "build-image.sh: $*" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
SUITE=bookworm
MIRRORS=("deb http://deb.debian.org/debian $SUITE main" "deb http://deb.debian.org/debian-security $SUITE-security main")
# tini: PID 1; libstdc++6 libgcc-s1 libatomic1: what the package's native modules need beyond glibc
# (install.sh checks them); ca-certificates: HTTPS to a model source
INCLUDE=tini,libstdc++6,libgcc-s1,libatomic1,ca-certificates

ARCHES=() DIST=$REPO/dist TAG="" REBUILD=0 SAVE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) [ $# -ge 2 ] || die "--arch needs amd64 or arm64"; ARCHES+=("$2"); shift 2 ;;
    --dist) [ $# -ge 2 ] || die "--dist needs a directory"; DIST=$2; shift 2 ;;
    --tag) [ $# -ge 2 ] || die "--tag needs a name"; TAG=$2; shift 2 ;;
    --rebuild-base) REBUILD=1; shift ;;
    --save) [ $# -ge 2 ] || die "--save needs a directory"; SAVE=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(amd64 arm64)
[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap and rootful podman)"
for cmd in podman mmdebstrap; do command -v $cmd >/dev/null || die "$cmd is missing (apt-get install $cmd)"; done
VERSION=$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$REPO/package.json")
[ -n "$VERSION" ] || die "no version in $REPO/package.json"
TAG=${TAG:-localhost/llmesh:$VERSION}
HOST=$(dpkg --print-architecture)
if [ -n "$SAVE" ]; then
  mkdir -p "$SAVE"
  if compgen -G "$SAVE/llmesh-*-linux-*.tar.gz" >/dev/null; then
    die "--save $SAVE holds packages: give the image a directory of its own (its SHA256SUMS lists the archive alone)"
  fi
fi

WORK=$(mktemp -d /tmp/llmesh-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

for arch in "${ARCHES[@]}"; do
  case "$arch" in amd64) pkgarch=x64 ;; arm64) pkgarch=arm64 ;; *) die "unknown architecture $arch (amd64, arm64)" ;; esac
  tarball=$DIST/llmesh-$VERSION-linux-$pkgarch.tar.gz
  [ -f "$tarball" ] || die "no $tarball (npm run package -- --arch $pkgarch)"
  if [ "$arch" != "$HOST" ] && [ ! -e "/proc/sys/fs/binfmt_misc/qemu-aarch64" ]; then
    die "an $arch image on $HOST needs binfmt_misc emulation (apt-get install qemu-user-static binfmt-support arch-test)"
  fi
  base=localhost/llmesh-base:$SUITE-$arch
  if [ $REBUILD = 1 ] || ! podman image exists "$base"; then
    t0=$(date +%s)
    mmdebstrap --quiet --variant=minbase --architectures="$arch" --include="$INCLUDE" --skip=output/dev \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      "$SUITE" "$WORK/base-$arch.tar" "${MIRRORS[@]}"
    podman import --quiet --arch "$arch" "$WORK/base-$arch.tar" "$base" >/dev/null
    rm -f "$WORK/base-$arch.tar"
    echo "build-image.sh: made $base from Debian packages in $(($(date +%s) - t0)) s"
  fi
  ctx=$WORK/ctx-$arch
  mkdir -p "$ctx"
  cp "$HERE/Containerfile" "$ctx/Containerfile"
  ln "$tarball" "$ctx/" 2>/dev/null || cp "$tarball" "$ctx/"
  t0=$(date +%s)
  podman build --quiet --pull=never --isolation=chroot --arch "$arch" --build-arg BASE="$base" \
    --build-arg PACKAGE="$(basename "$tarball")" -t "$TAG-$arch" -f "$ctx/Containerfile" "$ctx" >/dev/null
  echo "build-image.sh: built $TAG-$arch in $(($(date +%s) - t0)) s"
done

# the manifest list: made anew from the images of this run and any other architecture already built
podman manifest exists "$TAG" && podman manifest rm "$TAG" >/dev/null
podman manifest create "$TAG" >/dev/null
for arch in amd64 arm64; do
  if podman image exists "$TAG-$arch"; then podman manifest add "$TAG" "containers-storage:$TAG-$arch" >/dev/null; fi
done
echo "build-image.sh: $TAG lists $(podman manifest inspect "$TAG" | grep -c '"architecture"') image(s)"
if [ -n "$SAVE" ]; then
  oci=llmesh-$VERSION-oci.tar
  # a signature of the previous SHA256SUMS could only fail to verify: sign again
  rm -f "$SAVE/$oci" "$SAVE/SHA256SUMS.sigstore.json"
  podman manifest push --quiet --all "$TAG" "oci-archive:$SAVE/$oci:$TAG" >/dev/null
  (cd "$SAVE" && sha256sum "$oci" >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
  echo "build-image.sh: wrote $SAVE/$oci and $SAVE/SHA256SUMS (sign: llmesh package sign $SAVE --fleet <fleet>)"
fi
