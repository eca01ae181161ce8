"""Size and complexity limits: no file over 400 lines (generated foryou_protos/ excepted), no
function over 60 lines or of cyclomatic complexity over 15.

Line counts read the files (a function's lines: from its `def`, decorators excluded, to its
last line, its docstring and comments included); complexity is ruff's C901 (McCabe, as the
`mccabe` package counts it). Prints every violation; exits 1 if there is any.

    .venv/bin/python scripts/code_size.py [PATH ...]   (default: the tracked Python files)
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_COMPLEXITY = 15
EXCLUDED = ("foryou_protos/",)
ROOT = Path(__file__).resolve().parent.parent


def python_files(paths: list[str]) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *paths],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    return sorted(p for p in listed if p.endswith(".py") and not p.startswith(EXCLUDED) and (ROOT / p).exists())


def size_violations(path: str) -> list[str]:
    text = (ROOT / path).read_text()
    out = []
    lines = text.count("\n") + (not text.endswith("\n") and bool(text))
    if lines > MAX_FILE_LINES:
        out.append(f"{path}: {lines} lines (file over {MAX_FILE_LINES})")
    for node in ast.walk(ast.parse(text, path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                out.append(f"{path}:{node.lineno}: {node.name} is {length} lines (function over {MAX_FUNCTION_LINES})")
    return out


def complexity_violations(files: list[str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "C901", "--output-format", "json",
         "--config", f"lint.mccabe.max-complexity = {MAX_COMPLEXITY}", *files],
        cwd=ROOT, capture_output=True, text=True)
    return [f"{Path(v['filename']).relative_to(ROOT)}:{v['location']['row']}: {v['message']}"
            for v in json.loads(result.stdout or "[]")]


def main(argv: list[str]) -> int:
    files = python_files(argv)
    violations = [v for f in files for v in size_violations(f)] + complexity_violations(files)
    for line in violations:
        print(line)
    files_over = sum("(file over" in v for v in violations)
    functions_over = sum("(function over" in v for v in violations)
    print(f"{len(files)} files: {files_over} over {MAX_FILE_LINES} lines, {functions_over} functions over "
          f"{MAX_FUNCTION_LINES} lines, {len(violations) - files_over - functions_over} over complexity {MAX_COMPLEXITY}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
