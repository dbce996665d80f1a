#!/usr/bin/env bash
# 安装并运行产品 (sets up and runs the product on the embedded default store: SQLite, no servers needed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
.venv/bin/yuqing init
# Default: the bundled demo site plus the whole product, so items arrive within a minute.
exec .venv/bin/yuqing "${@:-demo}"
