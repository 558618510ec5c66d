"""The dependency arrows point down: read every import of every library module.

``ocispec`` imports no sibling; ``ociimage``, ``ocistore`` and ``ocinet`` import only
``ocispec``; no library imports ``crid``, and no library speaks gRPC (mapping errors to
status codes is crid's job). Imports are read from the source (``import``, ``from``,
``importlib.import_module("...")`` and ``__import__("...")``), not from a list.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

WORKSPACE = ("ocispec", "ociimage", "ocistore", "ocinet", "crid")
ALLOWED: dict[str, set[str]] = {
    "ocispec": set(),
    "ociimage": {"ocispec"},
    "ocistore": {"ocispec"},
    "ocinet": {"ocispec"},
    "crid": {"ocispec", "ociimage", "ocistore", "ocinet"},
}
LIBRARY_FORBIDDEN = ("grpc", "google.protobuf")


@dataclass(frozen=True)
class Violation:
    file: Path
    line: int
    module: str
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: imports {self.module} ({self.why})"


def imported_modules(source: str, filename: str) -> list[tuple[int, str]]:
    """Every absolute module name the source imports, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            first = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                found.append((node.lineno, first.value))
    return found


def check_package(package: str, src_root: Path) -> list[Violation]:
    """Layering violations in ``src_root/<package>``."""
    violations = []
    for file in sorted((src_root / package).rglob("*.py")):
        for line, module in imported_modules(file.read_text(), str(file)):
            top = module.split(".")[0]
            if top in WORKSPACE and top != package and top not in ALLOWED[package]:
                violations.append(Violation(file, line, module, f"{package} may not use {top}"))
            if package != "crid" and any(
                module == bad or module.startswith(bad + ".") for bad in LIBRARY_FORBIDDEN
            ):
                violations.append(Violation(file, line, module, "libraries never speak gRPC"))
    return violations


@pytest.mark.parametrize("package", WORKSPACE)
def test_package_respects_layers(repo_root: Path, package: str) -> None:
    src = repo_root / "packages" / package / "src"
    assert (src / package / "__init__.py").is_file()
    violations = check_package(package, src)
    assert not violations, "\n".join(map(str, violations))


@pytest.mark.parametrize(
    ("package", "code", "bad"),
    [
        ("ocispec", "import ociimage\n", True),
        ("ocispec", "from ocinet.netns import x\n", True),
        ("ociimage", "from ocistore import Store\n", True),
        ("ocistore", "import importlib\nimportlib.import_module('ociimage.registry')\n", True),
        ("ocinet", "def f():\n    import crid.server\n", True),
        ("ocinet", "__import__('crid')\n", True),
        ("ocistore", "import grpc\n", True),
        ("ociimage", "from google.protobuf import message\n", True),
        ("ociimage", "from ocispec.image import Manifest\nfrom . import x\n", False),
        ("crid", "import ocistore, ociimage, ocinet, ocispec, grpc\n", False),
        ("ocispec", "import ocispecial\nimport json\n", False),
    ],
)
def test_checker_catches_violations(tmp_path: Path, package: str, code: str, bad: bool) -> None:
    module = tmp_path / package / "sub" / "mod.py"
    module.parent.mkdir(parents=True)
    module.write_text(code)
    assert bool(check_package(package, tmp_path)) is bad
