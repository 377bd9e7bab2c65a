#!/usr/bin/env bash
# Installs what the tests need and a fresh Debian 12 machine lacks: rustup components and the
# wasm32 target, Vulkan lavapipe, Xvfb and X11 libraries, Chromium, the two text corpora of
# `lm`, wasm-bindgen-cli matching Cargo.lock, and the npm browser-test driver. Idempotent and
# quick when everything is present (every install is skipped then); apt-get needs root.
# check.sh runs it first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust components and the wasm target
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# System packages: Vulkan lavapipe for wgpu compute, Xvfb + X11 libs for a native window,
# Chromium + chromedriver for the browser tests.
pkgs=(mesa-vulkan-drivers libvulkan1 libegl1 libgl1-mesa-dri xvfb xauth libxkbcommon-x11-0
      libxcursor1 libxrandr2 libxi6 chromium chromium-driver)
# The real-text corpora of `resonance-lab lm` (read in place, never committed): the Python
# standard library sources and the kernel documentation.
pkgs+=(libpython3.11-stdlib linux-doc-6.1)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js drives the browser tests (node --test + playwright-core); any recent node will do.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# wasm-bindgen CLI: must equal the wasm-bindgen version in Cargo.lock.
want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (found '${have:-none}')" >&2
  # the CLI's own lockfile pins a crate version that the registry no longer serves, so resolve
  # fresh when --locked fails
  cargo install wasm-bindgen-cli --version "$want" --locked \
    || cargo install wasm-bindgen-cli --version "$want"
fi

# The browser-test driver (playwright-core, pinned by package-lock.json; uses the system Chromium).
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund

