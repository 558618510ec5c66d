"""Each package declares only the dependencies its code really imports.

(The wheel test proves the converse: everything imported is declared.) Optional extras
are exempt, since they serve optional modules that import lazily.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

PACKAGES = ("ocispec", "ociimage", "ocistore", "ocinet", "crid")


def imported_top_levels(src: Path) -> set[str]:
    names: set[str] = set()
    for file in src.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return names


def distribution_modules(dist: str) -> set[str]:
    """Import names a distribution provides (``grpcio`` -> ``grpc``)."""
    if dist in PACKAGES:
        return {dist}
    provided = {
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if dist.lower() in (d.lower() for d in dists)
    }
    if "google" in provided:  # namespace package: be precise
        files = importlib.metadata.files(dist) or []
        provided = {".".join(Path(str(f)).parts[:2]) for f in files if str(f).startswith("google/")}
    return provided or {dist.replace("-", "_")}


@pytest.mark.parametrize("package", PACKAGES)
def test_declared_dependencies_are_used(repo_root: Path, package: str) -> None:
    root = repo_root / "packages" / package
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    imported = imported_top_levels(root / "src" / package)
    unused = []
    for requirement in project.get("dependencies", []):
        dist = re.split(r"[ ;<>=!~\[]", requirement, maxsplit=1)[0]
        modules = distribution_modules(dist)
        used = any(
            name == module or name.startswith(module + ".")
            for name in imported
            for module in modules
        )
        if not used:
            unused.append(dist)
    assert not unused, f"{package} declares dependencies it never imports: {unused}"
