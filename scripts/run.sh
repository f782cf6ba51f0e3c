#!/usr/bin/env bash
# Builds p2p-chat in release mode and runs a relay on the default ports (TCP/QUIC 4001,
# WebSocket 4002, WebRTC-direct 4003). Extra arguments go to `p2p-chat relay`, e.g.
#   ./scripts/run.sh --listen-addr 127.0.0.1 --external-addr /ip4/203.0.113.7/tcp/4001
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p p2p-chat-relay
target_dir="${CARGO_TARGET_DIR:-target}"
exec "$target_dir/release/p2p-chat" relay "$@"
