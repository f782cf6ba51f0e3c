#!/bin/sh
# Once, before compose.yaml's first `up`: makes relay-a's identity key (relay-a.key) and .env with
# its peer id, which relay-b names to join it. Never replaces a key that is there: a new key is
# a new relay, and every peer that knew the old one has to be told. Safe to run again: it only
# fills in what is missing.
#   ./init.sh [DIR]      DIR: where compose.yaml is [default: this script's directory]
# CONTAINER_ENGINE=docker picks the engine; RELAY_IMAGE another image.
set -eu
dir="${1:-$(dirname "$0")}"
engine="${CONTAINER_ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}"
key="$dir/relay-a.key"
env="$dir/.env"
umask 077

# The relay runs as uid 65532 in its container: the key must be its own, and nobody else's.
give_to_relay() {
  if [ "$(id -u)" -eq 0 ]; then
    chown 65532:65532 "$1"
  elif [ "$engine" = podman ]; then
    podman unshare chown 65532:65532 "$1"
  else
    echo "give the key to the relay's user before starting: sudo chown 65532:65532 $1" >&2
  fi
}

id=""
[ -f "$env" ] && id="$(sed -n 's/^RELAY_A_ID=//p' "$env")"
if [ -s "$key" ]; then
  echo "$key is there already: kept"
  if [ -z "$id" ]; then
    id="$(sed -n 's/^# peer id: //p' "$key" 2>/dev/null || true)"
  fi
else
  "$engine" run --rm --entrypoint /usr/local/bin/p2p-chat "${RELAY_IMAGE:-p2p-chat-relay}" genkey > "$key.new"
  id="$(sed -n 's/^# peer id: //p' "$key.new")"
  give_to_relay "$key.new"
  mv "$key.new" "$key"
  echo "made $key"
fi
[ -n "$id" ] || { echo "no peer id for $key: put RELAY_A_ID=<its peer id> in $env (the key's second line has it)" >&2; exit 1; }

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
