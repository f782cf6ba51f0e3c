#!/usr/bin/env bash
# Fuzzes every decoder of bytes from the network or disk (fuzz/src/lib.rs) with AFL++, through
# cargo-afl on the stable toolchain, for SECONDS each (default 60), starting from the checked-in
# corpus (fuzz/seeds/<target>/). Fails on any crash or hang and prints the input that caused it.
#
#   ./scripts/fuzz.sh [SECONDS]
#
# Installs cargo-afl from the crate registry and builds AFL++ with the C compiler the first
# time (both skipped when present). The instrumented build has a target directory of its own
# (FUZZ_TARGET_DIR, default ~/.cache/p2p-chat/fuzz-target) so it never invalidates the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
CARGO_AFL_VERSION="0.18.2"
targets=(room_payload rpc sealed_dm store_query key_file files)

if ! cargo afl --version 2>/dev/null | grep -q "$CARGO_AFL_VERSION"; then
  echo "installing cargo-afl $CARGO_AFL_VERSION (once)"
  cargo install --locked cargo-afl --version "$CARGO_AFL_VERSION"
fi
# AFL++ itself, built by cargo-afl with the C compiler (once per rustc and cargo-afl version;
# installing cargo-afl usually does it).
if ! ls "$HOME"/.local/share/afl.rs/rustc-"$(rustc --version | cut -d' ' -f2)"-*/afl.rs-"$CARGO_AFL_VERSION"/afl/bin/afl-fuzz >/dev/null 2>&1; then
  echo "building AFL++ (once)"
  cargo afl config --build --force
fi

export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/p2p-chat/fuzz-target}"
cargo afl build --release --locked -p p2p-chat-fuzz --features afl --bins

findings="$CARGO_TARGET_DIR/findings"
mkdir -p "$findings"
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_SKIP_CRASHES=0 AFL_NO_AFFINITY=1
failed=0
for target in "${targets[@]}"; do
  out="$findings/$target"
  rm -rf "$out"
  log="$(mktemp)"
  if ! cargo afl fuzz -V "$seconds" -i "fuzz/seeds/$target" -o "$out" \
      "$CARGO_TARGET_DIR/release/$target" >"$log" 2>&1; then
    echo "afl-fuzz failed on $target:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  rm -f "$log"
  stats="$out/default/fuzzer_stats"
  execs="$(awk -F' *: *' '$1=="execs_done"{print $2}' "$stats")"
  paths="$(awk -F' *: *' '$1=="corpus_count"{print $2}' "$stats")"
  crashes="$(find "$out/default/crashes" -type f ! -name README.txt | wc -l)"
  hangs="$(find "$out/default/hangs" -type f | wc -l)"
  echo "fuzz $target: ${seconds}s, $execs runs, $paths inputs in the corpus, $crashes crashes, $hangs hangs"
  for found in $(find "$out/default/crashes" "$out/default/hangs" -type f ! -name README.txt); do
    failed=1
    echo "  finding: $found" >&2
    od -c "$found" | head -n 10 >&2
  done
done
if [ "$failed" -ne 0 ]; then
  echo "the fuzzer found inputs that crash or hang (above); add each to fuzz/seeds/<target>/ once fixed" >&2
  exit 1
fi
