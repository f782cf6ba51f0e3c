#!/bin/sh
# Once, before compose.yaml's first `up`: makes relay-a's identity key (relay-a.key) and .env with
# its peer id, which relay-b names to join it. Never replaces a key that is there: a new key is
# a new relay, and every peer that knew the old one has to be told. Safe to run again: it only
# fills in what is missing, and gives the key to the relay's user if it is not yet.
#   ./init.sh [DIR]      DIR: where compose.yaml is [default: this script's directory]
# CONTAINER_ENGINE=docker picks the engine; RELAY_IMAGE another image.
set -eu
dir="${1:-$(dirname "$0")}"
engine="${CONTAINER_ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}"
key="$dir/relay-a.key"
env="$dir/.env"

if [ -s "$key" ]; then
  echo "$key is there already: kept"
else
  (umask 077 && "$engine" run --rm --entrypoint /usr/local/bin/p2p-chat "${RELAY_IMAGE:-p2p-chat-relay}" genkey > "$key.new")
  mv "$key.new" "$key"
  echo "made $key"
fi

# Its peer id: the key's second line (read in rootless podman's user namespace once the key is
# the relay's), else what .env says.
id="$(sed -n 's/^# peer id: //p' "$key" 2>/dev/null || true)"
if [ -z "$id" ] && [ "$engine" = podman ]; then
  id="$(podman unshare sed -n 's/^# peer id: //p' "$key" 2>/dev/null || true)"
fi
if [ -z "$id" ] && [ -f "$env" ]; then
  id="$(sed -n 's/^RELAY_A_ID=//p' "$env")"
fi
[ -n "$id" ] || { echo "no peer id in $key: put RELAY_A_ID=<its peer id> in $env" >&2; exit 1; }

# The relay runs as uid 65532 in its container: the key must be its own, and nobody else's.
if [ "$(id -u)" -eq 0 ]; then
  chown 65532:65532 "$key"
elif [ "$engine" = podman ]; then
  podman unshare chown 65532:65532 "$key"
elif [ "$(stat -c %u "$key")" != 65532 ]; then
  echo "relay-a cannot read $key yet: sudo chown 65532:65532 $key, then run $0 again" >&2
  exit 1
fi

if [ ! -f "$env" ]; then
  cat > "$env" <<'END'
# compose.yaml's settings (README: "Run a public relay"). On a public server, each relay's public
# addresses, comma-separated; a page opened by name is given those with its name, e.g.
# RELAY_A_EXTERNAL_ADDRS=/dns4/chat.example.org/tcp/4001,/dns4/chat.example.org/udp/4001/quic-v1,/dns4/chat.example.org/tcp/4002/ws
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
