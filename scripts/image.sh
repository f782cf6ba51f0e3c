#!/usr/bin/env bash
# Builds the relay's container image (Containerfile, FROM scratch): the relay and the web app in
# release mode, staged with the C libraries the binary links into a build context, then
# `podman build` (or `docker build` where there is no podman).
#   ./scripts/image.sh                   the image p2p-chat-relay:latest
#   ./scripts/image.sh --tag NAME        another name
#   ./scripts/image.sh --binary FILE --web-dir DIR
#                                        packs a binary and an app already built instead (the
#                                        tests pack the debug binary: no release build)
#   ./scripts/image.sh --prometheus      p2p-chat-prometheus:latest, Debian's Prometheus FROM
#                                        scratch (deploy/prometheus.Containerfile), for
#                                        deploy/compose.yaml where no image can be pulled
# CONTAINER_ENGINE=docker picks the engine.
set -euo pipefail
caller="$PWD"
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

say() { printf '==> %s\n' "$*"; }
fail() { printf 'image.sh: %s\n' "$*" >&2; exit 1; }

tag=""
binary=""
web_dir=""
prometheus=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prometheus) prometheus=1; shift ;;
    --tag) tag="${2:?--tag needs a name}"; shift 2 ;;
    --binary) binary="$(cd "$caller" && realpath -m -- "${2:?--binary needs a file}")"; shift 2 ;;
    --web-dir) web_dir="$(cd "$caller" && realpath -m -- "${2:?--web-dir needs a directory}")"; shift 2 ;;
    *) fail "unknown argument $1 (the top of $0 lists them)" ;;
  esac
done

engine="${CONTAINER_ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman
  elif command -v docker >/dev/null; then engine=docker
  else fail "neither podman nor docker is installed: on Debian, apt install podman runc"
  fi
fi

context="$CARGO_TARGET_DIR/image-context"
rm -rf "$context"
mkdir -p "$context/rootfs" "$context/data"

# Copies the dynamic loader and the libraries $1 links into the context, at the paths it looks
# for them.
stage_libraries() {
  local lib
  if ldd "$1" | grep -q 'not found'; then
    fail "$1 links libraries this machine lacks: $(ldd "$1" | grep 'not found' | tr -s ' \t' ' ')"
  fi
  for lib in $(ldd "$1" | grep -o '/[^ ]*' || true); do
    mkdir -p "$context/rootfs$(dirname "$lib")"
    cp -L "$lib" "$context/rootfs$lib"
  done
}

if [ -n "$prometheus" ]; then
  tag="${tag:-p2p-chat-prometheus:latest}"
  containerfile=deploy/prometheus.Containerfile
  [ -x /usr/bin/prometheus ] || fail "no /usr/bin/prometheus: apt install prometheus (or use an image of Prometheus you can pull)"
  say "staging Debian's Prometheus in $context"
  cp /usr/bin/prometheus "$context/prometheus"
  stage_libraries /usr/bin/prometheus
else
  tag="${tag:-p2p-chat-relay:latest}"
  containerfile=Containerfile
  if [ -z "$binary" ] || [ -z "$web_dir" ]; then
    ./scripts/setup.sh
  fi
  if [ -z "$web_dir" ]; then
    say "building the web app (release)"
    PATH="$PWD/tools/node_modules/.bin:$PATH" trunk build --release
    web_dir=dist
  fi
  if [ -z "$binary" ]; then
    say "building the relay (release)"
    cargo build --release --locked -p p2p-chat
    binary="$CARGO_TARGET_DIR/release/p2p-chat"
  fi
  [ -x "$binary" ] || fail "$binary is not an executable: build it first (cargo build -p p2p-chat)"
  [ -f "$web_dir/index.html" ] || fail "$web_dir has no index.html: build the web app first (trunk build --release)"
  say "staging the build context in $context"
  # Without symbols: the debug binary is hundreds of MB with them.
  strip -o "$context/p2p-chat" "$binary"
  stage_libraries "$binary"
  mkdir -p "$context/web"
  cp -r "$web_dir/." "$context/web/"
fi

say "building the image $tag with $engine"
format=()
# podman's default (OCI) image format has no HEALTHCHECK.
[ "$engine" = podman ] && format=(--format docker)
"$engine" build "${format[@]}" -f "$containerfile" -t "$tag" "$context"
size="$("$engine" image inspect --format '{{.Size}}' "$tag")"
say "image $tag: $((size / 1000000)) MB"
