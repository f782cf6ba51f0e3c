#!/usr/bin/env bash
# Runs every test of p2p-chat: Rust unit and integration tests (loopback only, mDNS and UPnP
# off), the WebAssembly build of the browser peer, and the Playwright end-to-end tests in
# headless Chromium (browsers and CLI peers chatting through a real relay).
# Installs what it needs (scripts/setup.sh) and skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

step() { printf '\n==> %s\n' "$*"; }

step "setup"
./scripts/setup.sh --test

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

step "Rust tests (unit and integration)"
cargo test --workspace --locked 2>&1 | tee "$log"
rust_passed="$(awk '/^test result:/ { p += $4 } END { print p + 0 }' "$log")"

step "WebAssembly: check shared and web for wasm32, build the app with trunk"
cargo check --locked -p p2p-chat-shared -p p2p-chat-web --target wasm32-unknown-unknown
trunk build

step "end-to-end tests (Playwright, headless Chromium)"
cargo build --locked -p p2p-chat-relay
(cd playwright && npx playwright test) 2>&1 | tee "$log"
e2e_passed="$(sed -n 's/^ *\([0-9][0-9]*\) passed.*/\1/p' "$log" | tail -n 1)"

step "all tests passed"
echo "rust: $rust_passed passed, 0 failed"
echo "e2e: ${e2e_passed:-0} passed, 0 failed"
echo "all: $((rust_passed + ${e2e_passed:-0})) passed, 0 failed"
