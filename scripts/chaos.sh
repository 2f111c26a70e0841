#!/usr/bin/env bash
# The durability test on its own, with its counts printed: PostgreSQL + Redis, two API
# replicas and two workers as processes, a worker killed (SIGKILL) at random moments and
# started again. Options go to tests/durability/chaos.py (--threads, --turns, --seed,
# --shape embedded for a control run on one server). Needs the machine's Redis (or
# ASSISTD_TEST_CHAOS_REDIS_URL, a database the test may empty) and a PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh dev
exec .venv/bin/python -m tests.durability.chaos "$@"
