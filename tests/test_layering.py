"""The package layering of docs/architecture.md, read from the code: no import cycle between
modules of `rem/`, no import against the allowed directions, no underscore name of another
module used anywhere in the project.

The allowed directions are parsed from the table in docs/architecture.md, so the document and
this test cannot drift apart. Imports inside functions count too (a lazy import is still a
dependency), and so do imports under `if TYPE_CHECKING:`: they load nothing at run time, but
two modules that need each other's names are one concept split in two, so they make a cycle
as well.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
# python -m rem: the command line's entry point, part of the CLI layer
ENTRY_POINTS = {"rem.__main__": "rem.cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules(*folders: str) -> dict[str, Path]:
    return {module_name(p): p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))}


REM = project_modules("rem")


def type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        name = getattr(test, "id", None) or getattr(test, "attr", None)
        if name == "TYPE_CHECKING":
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


def imported_names(
    tree: ast.AST, module: str, is_package: bool, runtime_only: bool = False
) -> list[tuple[str, str | None]]:
    """(module imported, name taken from it or None) for every import statement."""
    out: list[tuple[str, str | None]] = []
    skip = type_checking_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*package, *([base] if base else [])])
            out += [(base, alias.name) for alias in node.names]
    return out


def rem_dependencies(module: str, path: Path, runtime_only: bool = False) -> set[str]:
    """Modules of rem/ that `module` imports (`from rem.x import y`: rem.x.y if y is a
    module, else rem.x)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    deps = set()
    for base, name in imported_names(tree, module, path.name == "__init__.py", runtime_only):
        target = f"{base}.{name}" if name and f"{base}.{name}" in REM else base
        if target in REM and target != module:
            deps.add(target)
    return deps


def package_of(module: str) -> str:
    if module in ENTRY_POINTS:
        return ENTRY_POINTS[module]
    parts = module.split(".")
    if len(parts) > 1 and (ROOT / "rem" / parts[1]).is_dir():
        return ".".join(parts[:2])
    return "rem"  # the package root and its top-level modules (config, games, ...)


def allowed_imports() -> dict[str, set[str]]:
    """package -> packages it may import, from the "may import" column of the table."""
    allowed: dict[str, set[str]] = {}
    for line in ARCHITECTURE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not re.fullmatch(r"`rem(\.\w+)?`", cells[1]):
            continue
        package = cells[1].strip("`")
        may = set(re.findall(r"`(rem(?:\.\w+)?)`", cells[3]))
        allowed[package] = {"*"} if cells[3] == "every package" else may
    return allowed


GRAPH = {m: rem_dependencies(m, p) for m, p in REM.items()}
RUNTIME_GRAPH = {m: rem_dependencies(m, p, runtime_only=True) for m, p in REM.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_table_names_every_package():
    allowed = allowed_imports()
    packages = {package_of(m) for m in REM}
    assert packages == set(allowed), (
        f"docs/architecture.md's table lists {sorted(allowed)}, rem/ has {sorted(packages)}"
    )
    for package, targets in allowed.items():
        assert targets <= set(allowed) | {"*"}, (package, targets - set(allowed))


def test_no_import_cycle():
    cycle = find_cycle(RUNTIME_GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycle_with_type_checking_imports():
    cycle = find_cycle(GRAPH)
    assert cycle is None, (
        "import cycle through TYPE_CHECKING imports: "
        + " -> ".join(cycle or [])
        + "; move the shared types into a module both import"
    )


def test_imports_follow_the_layers():
    allowed = allowed_imports()
    wrong = [
        f"{module} imports {dep} ({package_of(module)} may not import {package_of(dep)})"
        for module, deps in sorted(GRAPH.items())
        for dep in sorted(deps)
        if package_of(dep) != package_of(module)
        and "*" not in allowed[package_of(module)]
        and package_of(dep) not in allowed[package_of(module)]
    ]
    assert not wrong, "\n".join(wrong)


def test_results_never_load_torch():
    """The results stage and the run folder contract are independent of the agent:
    `snakemake paper`, the workflow's parse and `rem status` need no torch."""
    for module, path in REM.items():
        if package_of(module) in ("rem.results", "rem.runs"):
            tree = ast.parse(path.read_text())
            roots = {base.split(".")[0] for base, _ in imported_names(tree, module, False)}
            assert "torch" not in roots, f"{module} imports torch"


def _underscore_uses(path: Path, module: str, modules: dict[str, Path]) -> list[str]:
    """Private names of other project modules used by `module`: `from m import _x` and
    `m._x` on a module imported by name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found, aliases = [], {}  # aliases: local name -> project module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in modules and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in modules:
                    aliases[alias.asname or alias.name] = full
                elif node.module != module and alias.name.startswith("_"):
                    found.append(f"{module}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and aliases[node.value.id] != module
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{module}: {aliases[node.value.id]}.{node.attr} (line {node.lineno})")
    return found


def test_no_private_name_of_another_module():
    modules = project_modules("rem", "benchmarks", "scripts", "workflow/scripts")
    found = [use for m, p in sorted(modules.items()) for use in _underscore_uses(p, m, modules)]
    assert not found, "make these public where another module needs them:\n" + "\n".join(found)
