#!/usr/bin/env bash
# Runs one benchmark of bench/, the one way: scripts/bench.sh <name> [its options]
# (--help lists them). Each measures assistd beside a baseline in the same run, prints a
# table and writes bench/results/<name>-<timestamp>.json. bench/README.md describes each.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHES=(objects runs sandbox knowledge knowledge_eval tools mcp_sessions surfaces
         observability audit quotas dist_ab)
name="${1:-}"
if [[ -z "$name" || ! " ${BENCHES[*]} " =~ " $name " ]]; then
    echo "usage: scripts/bench.sh {$(IFS='|'; echo "${BENCHES[*]}")} [options]" >&2
    exit 2
fi
shift
scripts/install.sh dev  # the benchmarks start servers and use the test helpers
exec .venv/bin/python -m "bench.$name" "$@"
