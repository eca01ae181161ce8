#!/usr/bin/env bash
# Lint (ruff), type check (mypy) and size limits (scripts/code_size.py) as .ci/run does;
# config in pyproject.toml.
# `scripts/lint.sh --strict-all`: also type check the modules pyproject.toml still exempts
# (lists their errors; exits non-zero while any remain).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m ruff check .
if [[ "${1:-}" == "--strict-all" ]]; then
  # The same settings, less the per-module exemptions.
  config=$(mktemp --suffix=.toml)
  trap 'rm -f "$config"' EXIT
  "$PY" - "$config" <<'PYEOF'
import sys, tomllib
mypy = tomllib.load(open("pyproject.toml", "rb"))["tool"]["mypy"]
mypy.pop("overrides", None)
def toml(v):
    return "[" + ", ".join(f'"{x}"' for x in v) + "]" if isinstance(v, list) else (str(v).lower() if isinstance(v, bool) else f'"{v}"')
with open(sys.argv[1], "w") as fh:
    fh.write("[tool.mypy]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in mypy.items()))
PYEOF
  "$PY" -m mypy --config-file "$config"
else
  "$PY" -m mypy
fi
"$PY" scripts/code_size.py
