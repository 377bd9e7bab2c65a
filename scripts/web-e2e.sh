#!/usr/bin/env bash
# Builds the web bundle, serves it on 127.0.0.1 and runs the browser tests (tests/e2e) in headless
# Chromium (/usr/bin/chromium via npm playwright-core). Screenshots land in target/e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/web-build.sh
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
PORT=${PORT:-8765}
(cd dist && exec python3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
server=$!
trap 'kill $server' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.2; done
E2E_URL="http://127.0.0.1:$PORT/" node --test tests/e2e/
