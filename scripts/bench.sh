#!/usr/bin/env bash
# Runs one benchmark of bench/, the one way: scripts/bench.sh <name> [its options]
# (--help lists them). Each measures assistd beside a baseline in the same run, prints a
# table and writes bench/results/<name>-<timestamp>.json.
#   objects  object-call latency (assistants, messages) on SQLite and PostgreSQL
#   runs     the run engine: overhead, time to first token, throughput, the local model
#   sandbox  code interpreter kernels: cold start, warm `1+1`, a 100-call session
#   knowledge  knowledge-base search latency at N chunks, and ingestion throughput
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A BENCHES=([objects]=bench.objects [runs]=bench.runs [sandbox]=bench.sandbox
                   [knowledge]=bench.knowledge)
name="${1:-}"
if [[ -z "$name" || -z "${BENCHES[$name]:-}" ]]; then
    echo "usage: scripts/bench.sh {objects|runs|sandbox|knowledge} [options]" >&2
    exit 2
fi
shift
scripts/install.sh dev  # the benchmarks start servers and use the test helpers
exec .venv/bin/python -m "${BENCHES[$name]}" "$@"
