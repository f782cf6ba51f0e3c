#!/usr/bin/env bash
# Runs every test of p2p-chat: Rust unit and integration tests (loopback only, mDNS and UPnP
# off), and the WebAssembly build check of the crates that run in the browser.
# Installs what it needs (the wasm32 target) and skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: wasm32-unknown-unknown target"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

step "fetch crates (locked)"
cargo fetch --locked

step "Rust tests (unit and integration)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
rust_summary="$(awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed", p, f }' "$log")"

step "WebAssembly build check: shared and web for wasm32-unknown-unknown"
cargo check --locked -p p2p-chat-shared -p p2p-chat-web --target wasm32-unknown-unknown

step "all tests passed"
echo "rust: $rust_summary"
