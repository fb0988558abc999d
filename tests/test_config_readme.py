"""config/README.md documents every key of the workflow config: each key of
workflow/schemas/config.schema.yaml (nested ones as `section.key`, list entries as
`variants[].key`) and each `results.<key>` of rem.results.settings.ResultsConfig.

`python tests/test_config_readme.py` prints the table of schema keys from the schema's own
defaults and descriptions, to paste into config/README.md when keys are added.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
README = ROOT / "config" / "README.md"


def _default(node: dict, required: bool) -> str:
    if required:
        return "required"
    if "default" not in node:
        return "optional"
    text = yaml.safe_dump(node["default"], default_flow_style=True).strip()
    return f"`{text.removesuffix('...').strip()}`"


def schema_keys(node: dict | None = None, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, description) of every key of the schema, parents before children."""
    schema = yaml.safe_load(SCHEMA.read_text())
    node = schema if node is None else node
    defs = schema.get("$defs", {})
    out = []
    required = set(node.get("required", []))
    for name, sub in node.get("properties", {}).items():
        key = prefix + name
        target = defs[sub["$ref"].split("/")[-1]] if "$ref" in sub else sub
        text = " ".join((sub.get("description") or target.get("description") or "").split())
        out.append((key, _default(sub, name in required), text))
        if "properties" in target:
            out += schema_keys(target, key + ".")
        if isinstance(target.get("items"), dict) and "properties" in target["items"]:
            out += schema_keys(target["items"], key + "[].")
    return out


def documented_keys() -> set[str]:
    """The keys named in the first cell of a table row of config/README.md."""
    return set(re.findall(r"^\| `([\w.\[\]]+)` \|", README.read_text(), re.M))


def table() -> str:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    rows += [f"| `{k}` | {d} | {t.replace('|', '&#124;')} |" for k, d, t in schema_keys()]
    return "\n".join(rows)


def test_every_schema_key_is_documented():
    missing = [k for k, _, _ in schema_keys() if k not in documented_keys()]
    assert not missing, (
        f"config/README.md does not document {', '.join(missing)}: add a row "
        "| `key` | default | meaning | (python tests/test_config_readme.py prints them all "
        "from the schema's descriptions)"
    )


def test_every_results_setting_is_documented():
    from rem.results.settings import ResultsConfig

    keys = [f"results.{f.name}" for f in dataclasses.fields(ResultsConfig)]
    missing = [k for k in keys if k not in documented_keys()]
    assert not missing, (
        f"config/README.md does not document {', '.join(missing)}: add a row "
        "| `results.key` | default | meaning | to its results table"
    )


def test_no_row_documents_a_key_that_is_gone():
    from rem.results.settings import ResultsConfig

    known = {k for k, _, _ in schema_keys()}
    known |= {f"results.{f.name}" for f in dataclasses.fields(ResultsConfig)}
    gone = sorted(documented_keys() - known)
    assert not gone, f"config/README.md documents {', '.join(gone)}, keys no longer read"


if __name__ == "__main__":
    print(table())
