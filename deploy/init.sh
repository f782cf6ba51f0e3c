#!/bin/sh
# Once, before compose.yaml's first `up`: makes relay-a's identity key (relay-a.key) and .env with
# its peer id, which relay-b names to join it. Never replaces a key that is there: a new key is
# a new relay, and every peer that knew the old one has to be told.
#   ./init.sh [DIR]      DIR: where compose.yaml is [default: this script's directory]
# CONTAINER_ENGINE=docker picks the engine; RELAY_IMAGE another image.
set -eu
dir="${1:-$(dirname "$0")}"
engine="${CONTAINER_ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}"
key="$dir/relay-a.key"
peer_id() { sed -n 's/^# peer id: //p' "$1"; }
if [ -s "$key" ]; then
  echo "$key is there already: kept"
  # Readable unless rootless podman gave it to the relay's user.
  id="$(peer_id "$key" 2>/dev/null || podman unshare sed -n 's/^# peer id: //p' "$key")"
else
  umask 077
  "$engine" run --rm --entrypoint /usr/local/bin/p2p-chat "${RELAY_IMAGE:-p2p-chat-relay}" genkey > "$key.new"
  id="$(peer_id "$key.new")"
  mv "$key.new" "$key"
  # The relay runs as uid 65532 in its container; the key stays unreadable by anyone else.
  if [ "$(id -u)" -eq 0 ]; then
    chown 65532:65532 "$key"
  elif [ "$engine" = podman ]; then
    podman unshare chown 65532:65532 "$key"
  else
    echo "now give the key to the relay's user: sudo chown 65532:65532 $key" >&2
  fi
  echo "made $key"
fi
[ -n "$id" ] || { echo "$key names no peer id: remove it and run $0 again" >&2; exit 1; }
env="$dir/.env"
if [ ! -f "$env" ]; then
  cat > "$env" <<'END'
# compose.yaml's settings (README: "Run a public relay"). On a public server, each relay's public
# addresses, comma-separated, e.g. /dns4/chat.example.org/tcp/4001,/dns4/chat.example.org/udp/4001/quic-v1
RELAY_A_EXTERNAL_ADDRS=
RELAY_B_EXTERNAL_ADDRS=
END
fi
if grep -q '^RELAY_A_ID=' "$env"; then
  sed -i "s/^RELAY_A_ID=.*/RELAY_A_ID=$id/" "$env"
else
  echo "RELAY_A_ID=$id" >> "$env"
fi
echo "relay-a is $id (in $env)"
