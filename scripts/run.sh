#!/usr/bin/env bash
# Builds p2p-chat in release mode (the relay and the web app) and runs a relay that serves the
# app: open http://127.0.0.1:8080 and chat. Ports: TCP/QUIC 4001, WebSocket 4002,
# WebRTC-direct 4003. Extra arguments go to `p2p-chat relay`, e.g.
#   ./scripts/run.sh --external-addr /ip4/203.0.113.7/tcp/4001 --http-addr 0.0.0.0:8080
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
./scripts/setup.sh
PATH="$PWD/tools/node_modules/.bin:$PATH" trunk build --release
cargo build --release --locked -p p2p-chat
exec "$CARGO_TARGET_DIR/release/p2p-chat" relay --web-dir dist "$@"
