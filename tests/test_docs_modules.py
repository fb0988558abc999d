"""docs/architecture.md lists every module of rem/ in its Modules table, and no module that
is gone: the document follows the code."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def modules_on_disk() -> set[str]:
    """rem/**/*.py relative to the root, the packages' __init__.py aside."""
    return {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "rem").rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    }


def modules_listed() -> set[str]:
    """The first cell of every row of the Modules table: | `rem/.../x.py` | job |."""
    return set(re.findall(r"^\| `(rem/[\w/]+\.py)` \|", ARCHITECTURE.read_text(), re.M))


def test_every_module_of_rem_has_a_row_in_architecture_md():
    missing = sorted(modules_on_disk() - modules_listed())
    assert not missing, (
        f"docs/architecture.md does not list {', '.join(missing)}: add a row "
        "| `rem/<package>/<module>.py` | what it does | to its Modules table, beside its package"
    )


def test_every_row_of_the_modules_table_is_a_module():
    gone = sorted(modules_listed() - modules_on_disk())
    assert not gone, (
        f"docs/architecture.md lists {', '.join(gone)}, which no longer exist: remove or "
        "rename those rows of its Modules table"
    )
