#!/usr/bin/env bash
# Runs everything CI checks: formatting, clippy (native and wasm32), all tests, after installing
# whatever of the toolchain, browser and drivers is missing (scripts/setup.sh).
# Usage: ./check.sh   (set CARGO_TARGET_DIR to share a build cache)
set -euo pipefail
cd "$(dirname "$0")"

# Each step prints how long the one before it took, and the end prints them all (CI's budget
# is watched per phase).
t0=$(date +%s); last=$t0; current=""; phases=""
step() {
  local now; now=$(date +%s)
  [ -n "$current" ] && phases+="$(printf '%5ds  %s' $((now - last)) "$current")"$'\n'
  current="$*"; last=$now
  printf '\n==> %s\n' "$*" >&2
}
finish() {
  step "done"
  printf '\nphases:\n%s%5ds  total\n' "$phases" $(( $(date +%s) - t0 )) >&2
}

step "scripts/setup.sh (installs only what is missing)"
./scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (native)"
cargo clippy --all-targets -- -D warnings

step "cargo clippy (wasm32)"
cargo clippy --all-targets --target wasm32-unknown-unknown -- -D warnings

step "cargo test"
cargo test

step "web bundle (scripts/web-build.sh) and browser tests in headless Chromium"
./scripts/web-e2e.sh
finish
