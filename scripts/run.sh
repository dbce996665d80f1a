#!/usr/bin/env bash
# 安装并运行产品 (sets up and runs the product on the embedded default store: SQLite, no servers needed).
# 只在需要时安装：首次运行、pyproject.toml 改动之后，或安装不完整时；之后的启动直接运行。
# 参数原样传给 yuqing，例如：bash scripts/run.sh demo --port 8080 --demo-port 8811
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# The stamp holds the hash of pyproject.toml the venv was installed from.
STAMP=.venv/.yuqing-installed
WANT=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/yuqing ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "正在安装依赖（仅首次或 pyproject.toml 变化后）…" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # setuptools warns in English about editable installs on every install: not for a newcomer's screen.
  PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e .
  echo "$WANT" > "$STAMP"
fi
.venv/bin/yuqing init >/dev/null
# Default: the bundled demo site plus the whole product, so items arrive within a minute.
exec .venv/bin/yuqing "${@:-demo}"
