#!/usr/bin/env bash
# Installs assistd and starts the embedded server (SQLite in ./assistd-data).
# Extra arguments go to `assistd serve`, e.g. --port 9000 or --config assistd.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/assistd serve "$@"
