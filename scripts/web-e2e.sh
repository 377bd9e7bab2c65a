#!/usr/bin/env bash
# Builds the web bundle, serves it on 127.0.0.1 and runs the browser tests (tests/e2e) in headless
# Chromium (/usr/bin/chromium via npm playwright-core). Screenshots land in target/e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/web-build.sh
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
PORT=${PORT:-8765}
mkdir -p target/e2e
# the static server restarts if it ever exits mid-run (its log says why, in target/e2e)
(cd dist && while :; do
  python3 -m http.server "$PORT" --bind 127.0.0.1 >>../target/e2e/server.log 2>&1
  echo "server exited ($?), restarting" >>../target/e2e/server.log
  sleep 0.2
done) &
server=$!
trap 'kill $server 2>/dev/null; pkill -f "http.server $PORT --bind 127.0.0.1" || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.2; done
E2E_URL="http://127.0.0.1:$PORT/" node --test tests/e2e/
