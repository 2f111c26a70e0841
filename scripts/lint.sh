#!/usr/bin/env bash
# ruff (lint and format check) and mypy, the one way.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy
