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
# The build script's output directory holds the trimmed studies the page fetches (build.rs).
out_dir=$(cargo build --profile web --bin resonance-lab --target wasm32-unknown-unknown \
  --message-format=json-render-diagnostics |
  grep '"reason":"build-script-executed"' | grep '#resonance-lab@' |
  sed -E 's/.*"out_dir":"([^"]*)".*/\1/' | tail -n 1 || true)
if [ -z "$out_dir" ] || ! ls "$out_dir"/posgen_study_*.json >/dev/null 2>&1; then
  echo "web-build: no trimmed studies in the build script's output ('$out_dir')" >&2
  exit 1
fi
rm -rf dist
mkdir -p dist/studies
cp "$out_dir"/posgen_study_*.json dist/studies/
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir dist "$target_dir/wasm32-unknown-unknown/web/resonance-lab.wasm"
cp index.html dist/
cp -r web dist/
raw=$(stat -c %s dist/resonance-lab_bg.wasm)
gz=$(gzip -9 -c dist/resonance-lab_bg.wasm | wc -c)
echo "dist/resonance-lab_bg.wasm: $raw bytes raw, $gz bytes gzipped" >&2
studies=$(cat dist/studies/*.json | wc -c)
studies_gz=$(for f in dist/studies/*.json; do gzip -9 -c "$f"; done | wc -c)
echo "dist/studies/: $studies bytes raw, $studies_gz bytes gzipped (fetched when first shown)" >&2
weights=dist/web/assets/lm-small-prose/model.safetensors
echo "$weights: $(stat -c %s "$weights") bytes raw, $(gzip -9 -c "$weights" | wc -c) bytes gzipped (the Language model tab's model, fetched when the tab opens; not in the budget)" >&2
# The page's budget (README): 3 MB gzipped for the wasm, enforced.
budget=3000000
if [ "$gz" -gt "$budget" ]; then
  echo "dist/resonance-lab_bg.wasm: OVER the $budget-byte gzipped budget by $((gz - budget)) bytes" >&2
  exit 1
else
  echo "dist/resonance-lab_bg.wasm: within the $budget-byte gzipped budget ($((budget - gz)) bytes to spare)" >&2
fi
