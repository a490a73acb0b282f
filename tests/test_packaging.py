"""pyproject.toml (pip) and environment.yml (conda) must offer the same runtime."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's.
CONDA_TO_PIP = {"pytorch": "torch"}


def _split(requirement: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    extras = r"^\[[^\]]*\]"  # pip's extras (psycopg[binary]) are no part of the conda name
    return match.group(1).lower(), re.sub(extras, "", match.group(2).replace(" ", ""))


def _conda_dependencies() -> dict[str, str]:
    deps: dict[str, str] = {}
    in_deps = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        item = re.fullmatch(r"  - ([^:]+)", line)  # top-level list items only (not the pip: block)
        if in_deps and item:
            name, spec = _split(item.group(1))
            deps[CONDA_TO_PIP.get(name, name)] = spec
    return deps


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = dict(_split(r) for r in project["dependencies"])
    conda = _conda_dependencies()
    conda.pop("pip", None)
    python_spec = conda.pop("python")
    assert pip == conda, (
        "runtime dependencies differ between pyproject.toml and environment.yml:\n"
        f"  only in pyproject: { {k: v for k, v in pip.items() if conda.get(k) != v} }\n"
        f"  only in environment.yml: { {k: v for k, v in conda.items() if pip.get(k) != v} }"
    )
    lower = re.search(r">=(\d+\.\d+)", project["requires-python"]).group(1)
    assert f">={lower}" in python_spec, f"python bounds differ: {project['requires-python']} vs {python_spec}"


def test_environment_yml_installs_the_project():
    assert "--editable ." in (ROOT / "environment.yml").read_text()
