#!/usr/bin/env bash
# Builds the static web bundle into dist/: wasm built with the size-optimised `web` profile
# (Cargo.toml) + wasm-bindgen (--target web, name section dropped), no wasm-opt.
# Needs: rustup target wasm32-unknown-unknown, wasm-bindgen-cli equal to Cargo.lock's version.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$want" != "$have" ]; then
  echo "wasm-bindgen-cli $want required (found '${have:-none}'):" >&2
  echo "  cargo install wasm-bindgen-cli --version $want --locked" >&2
  exit 1
fi
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --profile web --bin resonance-lab --target wasm32-unknown-unknown
rm -rf dist
mkdir -p dist
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir dist "$target_dir/wasm32-unknown-unknown/web/resonance-lab.wasm"
cp index.html dist/
cp -r web dist/
raw=$(stat -c %s dist/resonance-lab_bg.wasm)
gz=$(gzip -9 -c dist/resonance-lab_bg.wasm | wc -c)
echo "dist/resonance-lab_bg.wasm: $raw bytes raw, $gz bytes gzipped" >&2
# The page's budget (README): 3 MB gzipped for the wasm. Printed, not enforced, while the
# bundle is over it.
budget=3000000
if [ "$gz" -gt "$budget" ]; then
  echo "dist/resonance-lab_bg.wasm: OVER the $budget-byte gzipped budget by $((gz - budget)) bytes" >&2
else
  echo "dist/resonance-lab_bg.wasm: within the $budget-byte gzipped budget ($((budget - gz)) bytes to spare)" >&2
fi
