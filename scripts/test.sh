#!/usr/bin/env bash
# Runs every test of p2p-chat: formatting, clippy (native and wasm32, warnings are errors) and
# the library's docs; Rust unit and integration tests (loopback, memory transport and network
# namespaces only; mDNS and UPnP off outside namespaces), the example bot and the benchmark's
# small runs; the WebAssembly build of the browser peer, and the Playwright end-to-end tests in
# headless Chromium (browsers and CLI peers chatting through a real relay); then the release
# build of the web app as run.sh makes it: its size against the budget, and the chat tests on it;
# the relay's container image and deploy/compose.yaml, run with podman.
# Installs what it needs (scripts/setup.sh) and skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

step() { printf '\n==> %s\n' "$*"; }

# Most bytes the release .wasm may take gzip-compressed (`gzip -9`): issue 3's 600 KB budget.
WASM_GZIP_BUDGET=600000

step "setup"
./scripts/setup.sh --test

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

step "format, lints (native and wasm32) and the library's docs"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --locked -p p2p-chat-shared -p p2p-chat-web --target wasm32-unknown-unknown -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked -p p2p-chat-shared --no-deps

step "Rust tests (unit, integration, the example bot; then the benchmark's small runs)"
cargo test --workspace --locked 2>&1 | tee "$log"
cargo test --locked -p p2p-chat --test bench -- --ignored 2>&1 | tee -a "$log"
rust_passed="$(awk '/^test result:/ { p += $4 } END { print p + 0 }' "$log")"

step "fuzzing: every decoder of network and disk bytes, ${FUZZ_SECONDS:-60} s each (AFL++ via cargo-afl)"
./scripts/fuzz.sh "${FUZZ_SECONDS:-60}" 2>&1 | tee "$log"
fuzz_lines="$(grep '^fuzz ' "$log")"

step "WebAssembly: build the app with trunk"
trunk build

step "end-to-end tests (Playwright, headless Chromium)"
cargo build --locked -p p2p-chat
(cd playwright && npx playwright test) 2>&1 | tee "$log"
e2e_passed="$(sed -n 's/^ *\([0-9][0-9]*\) passed.*/\1/p' "$log" | tail -n 1)"

step "release build of the web app, as run.sh makes it: size budget, and the chat tests against it"
release_dist="$CARGO_TARGET_DIR/dist-release"
PATH="$PWD/tools/node_modules/.bin:$PATH" trunk build --release --dist "$release_dist"
wasm="$(ls "$release_dist"/*.wasm)"
wasm_gzip="$(gzip -9 -c "$wasm" | wc -c)"
size_line="release .wasm: $(stat -c %s "$wasm") bytes, $wasm_gzip bytes gzip (budget: $WASM_GZIP_BUDGET)"
echo "$size_line"
if [ "$wasm_gzip" -gt "$WASM_GZIP_BUDGET" ]; then
  echo "the release .wasm is over its size budget (README: Size of the browser build)" >&2
  exit 1
fi
(cd playwright && P2P_CHAT_WEB_DIR="$release_dist" npx playwright test tests/chat.spec.ts) 2>&1 | tee "$log"
release_passed="$(sed -n 's/^ *\([0-9][0-9]*\) passed.*/\1/p' "$log" | tail -n 1)"

step "the relay's container image and deploy/compose.yaml, with podman: pages and CLI peers chat through them"
# The image packs the debug binary (the Containerfile and the volume are what is tested; a release
# build would add minutes) and the release web app.
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/scripts/containers.conf}"
if podman_error="$(podman info 2>&1 >/dev/null)"; then
  # What an earlier run cut short left: its containers, volumes and compose networks, images.
  for prefix in p2p-chat-test- p2pchat-test-; do
    podman ps -aq --filter "name=$prefix" | xargs -r podman rm -f >/dev/null
    podman volume ls -q --filter "name=$prefix" | xargs -r podman volume rm -f >/dev/null
    podman network ls -q --filter "name=$prefix" | xargs -r podman network rm >/dev/null
  done
  podman rmi --force p2p-chat-relay:test p2p-chat-prometheus:test >/dev/null 2>&1 || true
  ./scripts/image.sh --binary "$CARGO_TARGET_DIR/debug/p2p-chat" --web-dir "$release_dist" --tag p2p-chat-relay:test 2>&1 | tee "$log"
  image_size="$(sed -n 's/^==> image p2p-chat-relay:test: //p' "$log")"
  ./scripts/image.sh --prometheus --tag p2p-chat-prometheus:test >/dev/null
  (cd playwright && P2P_CHAT_WEB_DIR="$release_dist" P2P_CHAT_IMAGE=p2p-chat-relay:test \
    P2P_CHAT_PROMETHEUS_IMAGE=p2p-chat-prometheus:test npx playwright test --config container.config.ts) 2>&1 | tee "$log"
  container_passed="$(sed -n 's/^ *\([0-9][0-9]*\) passed.*/\1/p' "$log" | tail -n 1)"
  podman rmi --force p2p-chat-relay:test p2p-chat-prometheus:test >/dev/null 2>&1 || true
  container_line="containers: ${container_passed:-0} passed, 0 failed (the test image, debug binary: $image_size)"
elif [ -n "${P2P_CHAT_REQUIRE_PODMAN:-}" ]; then
  echo "podman cannot run here, and P2P_CHAT_REQUIRE_PODMAN says it must: $podman_error" >&2
  exit 1
else
  container_line="containers: SKIPPED, podman cannot run here: $podman_error"
  printf '\n!!!!! %s\n\n' "$container_line" >&2
fi

step "all tests passed"
echo "rust: $rust_passed passed, 0 failed"
echo "$fuzz_lines"
echo "e2e: ${e2e_passed:-0} passed, 0 failed"
echo "e2e against the release build: ${release_passed:-0} passed, 0 failed"
echo "$container_line"
echo "$size_line"
echo "all: $((rust_passed + ${e2e_passed:-0} + ${release_passed:-0} + ${container_passed:-0})) passed, 0 failed"
