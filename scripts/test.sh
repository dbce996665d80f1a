#!/usr/bin/env bash
# 安装并运行全部测试 (sets up and runs all tests). Real Elasticsearch, PostgreSQL and Chromium included.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests start for real (JDK + Maven for Elasticsearch, PostgreSQL, Chromium).
if [ "$(id -u)" = "0" ]; then
  bash .ci/install-deps.sh
else
  echo "not root: skipping system packages (tests needing them skip locally; CI=true makes them fail)" >&2
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Two workers, each test file on one of them (a file's module fixtures, e.g. a console server, start once);
# YUQING_TEST_WORKERS=0 runs everything in this process.
exec .venv/bin/python -m pytest -n "${YUQING_TEST_WORKERS:-2}" --dist loadfile "$@"
