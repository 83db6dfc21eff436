"""The shape of the code base: short functions, few deferred imports, layered packages.

These hold the redesign in place: a newcomer finds one place per concept, and a function fits
on a screen. The import layering itself is checked by import-linter (``make test`` runs
``lint-imports``; the contract is in pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "xstilts"
MAX_FUNCTION_LINES = 80
# Imports inside function bodies are allowed only where they defer a heavy or optional
# dependency (torch, transformers, faiss, accelerate, matplotlib) or break an import cycle
# that is documented at the import; everything else imports at module top.
MAX_DEFERRED_IMPORTS = 20


def _functions() -> list[tuple[int, str]]:
    out = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                out.append((length, f"{path.relative_to(SRC)}:{node.lineno} {node.name}"))
    return sorted(out, reverse=True)


def test_no_function_is_longer_than_a_screen():
    functions = _functions()
    print("\nlongest functions in src/xstilts:")
    for length, where in functions[:5]:
        print(f"  {length:3d} lines  {where}")
    too_long = [f"{where} ({n} lines)" for n, where in functions if n > MAX_FUNCTION_LINES]
    assert not too_long, too_long


def test_imports_are_at_module_top():
    deferred = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(func):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        deferred.append(f"{path.relative_to(SRC)}:{node.lineno}")
    print(f"\n{len(deferred)} deferred imports: {', '.join(deferred)}")
    assert len(deferred) <= MAX_DEFERRED_IMPORTS, deferred
