#!/usr/bin/env bash
# Installs what building and testing p2p-chat needs, idempotently: each step is skipped when
# what it installs is already there at the pinned version. Sourced by run.sh and test.sh.
#   ./scripts/setup.sh          build tools (wasm target, wasm-bindgen, trunk)
#   ./scripts/setup.sh --test   also Chromium, the Playwright packages, and what the tests run
#                               (Prometheus, nftables and miniupnpd, podman)
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.108   # must equal wasm-bindgen in Cargo.lock (pinned by libp2p 0.57)
TRUNK_VERSION=0.21.14          # trunk 0.22 needs a newer rustc than this machine's 1.95
BINARYEN_VERSION=132           # must equal tools/package.json and `wasm_opt` in Trunk.toml

say() { printf '==> %s\n' "$*"; }

for component in clippy rustfmt; do
  if ! rustup component list --installed | grep -q "^$component"; then
    say "adding the $component component"
    rustup component add "$component"
  fi
done

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  cargo install --locked wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

if [ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]; then
  say "installing trunk $TRUNK_VERSION (several minutes, once)"
  cargo install --locked trunk --version "$TRUNK_VERSION"
fi

# wasm-opt for the release browser build: binaryen from npm (tools/package.json), which run.sh
# puts first on PATH for trunk. Never Debian's binaryen 108: its output fails in the browser.
if [ "$(tools/node_modules/.bin/wasm-opt --version 2>/dev/null)" != "wasm-opt version $BINARYEN_VERSION (version_$BINARYEN_VERSION)" ] \
   || [ tools/package-lock.json -nt tools/node_modules/.package-lock.json ]; then
  say "installing binaryen $BINARYEN_VERSION (wasm-opt, npm)"
  (cd tools && npm ci --no-audit --no-fund)
fi

# trunk runs cargo offline (Trunk.toml): fetch every crate first.
cargo fetch --locked >/dev/null

if [ "${1:-}" = "--test" ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  apt_updated=""
  apt_install() {
    [ -n "$apt_updated" ] || { $sudo_cmd apt-get update -qq; apt_updated=1; }
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  }
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's Chromium"
    apt_install chromium chromium-driver
  fi
  if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; then
    say "installing Debian's Prometheus (the metrics tests scrape a test relay with it)"
    # Not its recommends (the node exporter), and no service: the tests start their own
    # Prometheus on loopback; a packaged one would listen on every interface.
    apt_install --no-install-recommends prometheus
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      $sudo_cmd systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
  fi
  if [ ! -x /usr/sbin/nft ] || ! dpkg -s miniupnpd-nftables >/dev/null 2>&1; then
    say "installing nftables and miniupnpd (the NAT tests' routers, in network namespaces the tests make)"
    # miniupnpd's nftables build alone: no service, no questions; the tests start their own
    # inside a router namespace (one on the machine's interface would send multicast out of it).
    apt_install --no-install-recommends nftables miniupnpd-nftables
  fi
  if ! command -v podman >/dev/null || [ ! -x /usr/sbin/runc ] || ! command -v podman-compose >/dev/null \
     || [ ! -x /usr/lib/cni/dnsname ]; then
    say "installing podman, runc, podman-compose and the dnsname plugin (the container image tests)"
    # runc: crun refuses the hybrid cgroups of a sandbox like CI's (scripts/containers.conf).
    # dnsname: the services of deploy/compose.yaml find each other by name.
    apt_install --no-install-recommends podman runc podman-compose golang-github-containernetworking-plugin-dnsname
  fi
  if [ ! -d playwright/node_modules/@playwright/test ] || [ playwright/package-lock.json -nt playwright/node_modules/.package-lock.json ]; then
    say "installing the Playwright packages (npm, no browser download)"
    (cd playwright && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
fi
