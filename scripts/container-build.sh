#!/usr/bin/env bash
# Builds the Gatehouse image from Containerfile for one architecture.
#
#   scripts/container-build.sh VERSION [TAG]
#
# TAG defaults to gatehouse:VERSION; ARCH (default: this machine's Go
# architecture) is amd64 or arm64; CONTAINER_ENGINE is podman (the
# default) or docker. The binary is dist/VERSION/gatehouse-linux-ARCH,
# checked against dist/VERSION/SHA256SUMS, or built by scripts/release.sh
# when it is not there yet. The build context holds only what the
# Containerfile copies: the binary and an empty data directory.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 VERSION [TAG]" >&2
  exit 2
fi
version="$1"
tag="${2:-gatehouse:$version}"
root="$(cd "$(dirname "$0")/.." && pwd)"
engine="${CONTAINER_ENGINE:-podman}"
arch="${ARCH:-$(go env GOARCH)}"
dist="${RELEASE_DIR:-$root/dist/$version}"
bin="gatehouse-linux-$arch"

if [ ! -f "$dist/$bin" ]; then
  RELEASE_ARCHS="$arch" "$root/scripts/release.sh" "$version" "$dist"
fi
(cd "$dist" && grep " $bin\$" SHA256SUMS | sha256sum -c --quiet -)
revision="$("$dist/$bin" version 2>/dev/null | awk '{print $4}' || true)"
if [ "$arch" != "$(go env GOHOSTARCH)" ]; then
  revision="$(git -C "$root" rev-parse HEAD)"
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$root/Containerfile" "$ctx/Containerfile"
cp "$dist/$bin" "$ctx/$bin"
mkdir "$ctx/data"

format=()
if [ "$engine" = podman ]; then
  # HEALTHCHECK is a Docker image setting (OCI images drop it); no
  # intermediate images are kept.
  format=(--format docker --layers=false)
fi
"$engine" build "${format[@]}" --platform "linux/$arch" \
  --build-arg TARGETARCH="$arch" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  -t "$tag" -f "$ctx/Containerfile" "$ctx"
echo "built $tag (linux/$arch, $version, revision $revision)"
