#!/usr/bin/env bash
# CI's check of the container image: builds it from Containerfile with
# podman, checks that it holds nothing but what the Containerfile names,
# runs it on a free port with --network host, and gets /healthz 200, a
# healthy HEALTHCHECK and a password-grant token from it.
#
# Installs podman and runc with apt when they are missing, and sets
# default_ulimits = [] under [containers] in
# /etc/containers/containers.conf, which podman needs on these machines
# (with --runtime runc).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

missing=""
command -v podman >/dev/null 2>&1 || missing="$missing podman"
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || missing="$missing runc"
if [ -n "$missing" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
conf=/etc/containers/containers.conf
if ! grep -qs '^[[:space:]]*default_ulimits[[:space:]]*=' "$conf"; then
  mkdir -p /etc/containers
  if grep -qs '^\[containers\]' "$conf"; then
    sed -i '/^\[containers\]/a default_ulimits = []' "$conf"
  else
    printf '[containers]\ndefault_ulimits = []\n' >> "$conf"
  fi
fi
podman=(podman --runtime runc)

version=v0.0.0-ci
tag="localhost/gatehouse-ci:$$"
name="gatehouse-ci-$$"
work="$(mktemp -d)"
cleanup() {
  "${podman[@]}" rm -f -v "$name" >/dev/null 2>&1 || true
  "${podman[@]}" rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "container check: $*" >&2; exit 1; }

RELEASE_DIR="$work/dist" scripts/container-build.sh "$version" "$tag"

# The image holds /gatehouse (root's, read and execute only) and the empty
# directory /data (the user's), in any layer, and nothing else.
"${podman[@]}" save --format docker-archive -o "$work/image.tar" "$tag" >/dev/null
mkdir "$work/image"
tar -xf "$work/image.tar" -C "$work/image"
files=""
layers="$(grep -o '"Layers":\[[^]]*\]' "$work/image/manifest.json" | sed 's/^"Layers":\[//; s/\]$//' | tr -d '"' | tr ',' ' ')"
[ -n "$layers" ] || fail "no layers in the saved image"
for layer in $layers; do
  files="$files$(tar -tvf "$work/image/$layer" --numeric-owner | awk '{print $1, $2, $6}')"$'\n'
done
files="$(echo "$files" | sed '/^$/d' | sort)"
want="$(printf '%s\n' 'drwxr-xr-x 65532/65532 data/' '-r-xr-xr-x 0/0 gatehouse' | sort)"
if [ "$files" != "$want" ]; then
  echo "image files:"; echo "$files"; echo "want:"; echo "$want"
  fail "the image holds more (or other) than the Containerfile names"
fi
config="$("${podman[@]}" image inspect --format '{{.Config.User}}|{{json .Config.Volumes}}|{{json .Config.Entrypoint}}|{{json .Config.Healthcheck.Test}}' "$tag")"
[ "$config" = '65532:65532|{"/data":{}}|["/gatehouse"]|["CMD","/gatehouse","healthcheck"]' ] ||
  fail "image configuration: $config"
echo "image files and configuration: as the Containerfile says"

# A free port on this machine.
port=""
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 20000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || fail "no free port"

password="container check $RANDOM$RANDOM"
# Without systemd podman cannot time the HEALTHCHECK (it says so with two
# "unable to get systemd connection" lines); it is run once below instead.
"${podman[@]}" run -d --name "$name" --network host \
  -e GATEHOUSE_ADDR="127.0.0.1:$port" -e GATEHOUSE_ADMIN_PASSWORD="$password" "$tag" >/dev/null
ok=""
for _ in $(seq 1 120); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ]; then ok=1; break; fi
  [ "$("${podman[@]}" inspect --format '{{.State.Running}}' "$name")" = true ] || break
  sleep 0.5
done
if [ -z "$ok" ]; then
  "${podman[@]}" logs "$name" >&2 || true
  fail "no 200 from /healthz"
fi
echo "GET /healthz: 200"

body="$(curl -s -X POST "http://127.0.0.1:$port/authorization" \
  --data-urlencode username=admin@example.com --data-urlencode "password=$password")"
token="$(echo "$body" | sed -n 's/.*"access_token":"\(gat_[^"]*\)".*/\1/p')"
[ -n "$token" ] || fail "no token from the password grant: $body"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/me")" = 200 ] ||
  fail "the token does not work"
echo "password grant: a token that works"

# The image's HEALTHCHECK, run by podman: gatehouse healthcheck, no shell.
"${podman[@]}" healthcheck run "$name" || fail "HEALTHCHECK failed"
echo "HEALTHCHECK: healthy"
# The server runs as 65532 and keeps its store in the /data volume.
user="$("${podman[@]}" top "$name" huser | tail -1 | tr -d ' ')"
[ "$user" = 65532 ] || fail "runs as $user"
"${podman[@]}" exec "$name" /gatehouse version | grep -q "^gatehouse $version revision " || fail "version"
mounts="$("${podman[@]}" inspect --format '{{range .Mounts}}{{.Destination}} {{end}}' "$name")"
[ "$mounts" = "/data " ] || fail "mounts: $mounts"
echo "container check passed"
