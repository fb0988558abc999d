"""The two install routes (pip via pyproject, conda via environment.yml) name the same packages."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_specs() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {_name(s): s.replace(" ", "") for s in specs}


def _environment_specs() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(s): s.replace(" ", "") for s in pip if not s.startswith("-e")}


def test_environment_yml_names_the_same_packages_as_pyproject():
    assert _environment_specs() == _pyproject_specs()


def test_rliable_pins_that_keep_it_importable():
    specs = _pyproject_specs()
    assert "<3" in specs["pandas"], "rliable 1.2.0 breaks with pandas 3"
    assert "<8" in specs["arch"], "rliable's arch dependency must stay below 8"


def test_console_script_is_installed_and_lists_subcommands():
    out = subprocess.run(
        [sys.executable, "-m", "rem", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "evaluate" in out
