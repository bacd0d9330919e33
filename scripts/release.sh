#!/usr/bin/env bash
# Builds a release: static (CGO_ENABLED=0) gatehouse binaries for linux/amd64
# and linux/arm64 with the version and the git revision stamped in, and their
# SHA256SUMS.
#
#   scripts/release.sh VERSION [OUTDIR]
#
# VERSION is a tag such as v1.2.3 (or v1.2.3-rc.1); OUTDIR defaults to
# dist/VERSION. RELEASE_ARCHS (default "amd64 arm64") chooses the
# architectures. The result:
#
#   OUTDIR/gatehouse-linux-amd64
#   OUTDIR/gatehouse-linux-arm64
#   OUTDIR/SHA256SUMS            (check with: cd OUTDIR && sha256sum -c SHA256SUMS)
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 VERSION [OUTDIR]" >&2
  exit 2
fi
version="$1"
if ! [[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "$0: version $version is not vMAJOR.MINOR.PATCH[-PRERELEASE]" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${2:-$root/dist/$version}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# The revision: the commit, with -modified when the tree has changes that
# are not committed (such a build is not a release anyone can reproduce).
revision="$(git -C "$root" rev-parse HEAD)"
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  revision="$revision-modified"
fi

cd "$root"
files=()
for arch in ${RELEASE_ARCHS:-amd64 arm64}; do
  name="gatehouse-linux-$arch"
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.Version=$version -X main.Revision=$revision" \
    -o "$out/$name" ./cmd/gatehouse
  files+=("$name")
  echo "built $out/$name"
done
(cd "$out" && sha256sum "${files[@]}" > SHA256SUMS)
echo "wrote $out/SHA256SUMS ($version, revision $revision)"
