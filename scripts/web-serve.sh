#!/usr/bin/env bash
# Serves dist/ on http://127.0.0.1:${PORT:-8000} (a secure context, as WebGPU requires).
set -euo pipefail
cd "$(dirname "$0")/../dist"
exec python3 -m http.server "${PORT:-8000}" --bind 127.0.0.1
