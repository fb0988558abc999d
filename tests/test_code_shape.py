"""The shape of the code of rem/: no function longer than 60 lines, none with more than 7
positional parameters (keyword-only options do not count, nor self/cls). A longer function is
split into named steps; more parameters go into a data object or become keyword-only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60
MAX_POSITIONAL = 7


def functions() -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(file:line name, node) of every function and method of rem/, nested ones too."""
    out = []
    for path in sorted((ROOT / "rem").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                out.append((where, node))
    return out


def positional(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Parameters that can be passed by position (and *args), self and cls aside."""
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args if a.arg not in ("self", "cls")]
    return len(names) + (1 if args.vararg else 0)


def test_no_function_over_60_lines():
    long = [
        f"{where}: {node.end_lineno - node.lineno + 1} lines"
        for where, node in functions()
        if node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert not long, f"functions over {MAX_LINES} lines (split them into steps):\n" + "\n".join(
        long
    )


def test_no_function_over_7_positional_parameters():
    wide = [
        f"{where}: {positional(node)} positional parameters"
        for where, node in functions()
        if positional(node) > MAX_POSITIONAL
    ]
    assert not wide, (
        f"functions with more than {MAX_POSITIONAL} positional parameters (pass a data "
        "object, or make options keyword-only):\n" + "\n".join(wide)
    )
