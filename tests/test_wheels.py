"""Each package builds to a wheel on its own and works in a venv holding only it.

The venv gets the package's wheel, the wheels of the siblings it declares, and the
third-party dependencies it declares (from the package index): nothing else. Then
every module of the package is imported there, so an undeclared dependency fails.
Test helpers (``<package>.testing``) may need the package's ``testing`` extra: they are
imported after that extra is installed, and must work with it alone.
"""

from __future__ import annotations

import email.message
import email.parser
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PACKAGES = ("ocispec", "ociimage", "ocistore", "ocinet", "crid")
SIBLINGS = set(PACKAGES)

IMPORT_ALL = """
import importlib, importlib.util, pkgutil, sys
name, with_testing = sys.argv[1], sys.argv[2] == "1"
package = importlib.import_module(name)
for info in pkgutil.walk_packages(package.__path__, name + "."):
    if info.name.endswith("__main__"):
        continue
    if info.name.startswith(name + ".testing") and not with_testing:
        continue
    importlib.import_module(info.name)
import importlib.resources
assert importlib.resources.files(name).joinpath("py.typed").is_file(), "py.typed missing"
others = sorted(s for s in set({siblings!r}) - {{name}} - set({allowed!r})
                if importlib.util.find_spec(s) is not None)
assert not others, f"undeclared siblings installed: {{others}}"
print("ok", package.__version__)
"""


def uv_env() -> dict[str, str]:
    """The environment for uv: outside any venv, trusting the system CA store (as make does)."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.setdefault("UV_SYSTEM_CERTS", "1")
    return env


def uv() -> str:
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is not on PATH (scripts/setup.sh installs it)")
    return found


@pytest.fixture(scope="module")
def wheels(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dist = tmp_path_factory.mktemp("dist")
    built: dict[str, Path] = {}
    for package in PACKAGES:
        subprocess.run(
            [uv(), "build", "--wheel", "--package", package, "-o", str(dist), "-q"],
            cwd=repo_root,
            check=True,
            timeout=300,
            env=uv_env(),
        )
        (wheel,) = dist.glob(f"{package}-*.whl")
        built[package] = wheel
    return built


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def declared(wheel: Path) -> list[str]:
    return [r for r in metadata(wheel).get_all("Requires-Dist") or [] if "extra ==" not in r]


def has_testing_extra(wheel: Path) -> bool:
    return "testing" in (metadata(wheel).get_all("Provides-Extra") or [])


def sibling_closure(package: str, wheels: dict[str, Path]) -> set[str]:
    todo, seen = [package], set()
    while todo:
        current = todo.pop()
        for requirement in declared(wheels[current]):
            dep = re.split(r"[ ;<>=!~\[]", requirement, maxsplit=1)[0]
            if dep in SIBLINGS and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_every_package_declares_exact_sibling_pins(wheels: dict[str, Path]) -> None:
    for package, wheel in wheels.items():
        for requirement in declared(wheel):
            dep = re.split(r"[ ;<>=!~\[]", requirement, maxsplit=1)[0]
            if dep in SIBLINGS:
                assert re.fullmatch(rf"{dep}\s*==\s*0\.1\.0", requirement), (package, requirement)


@pytest.mark.slow
@pytest.mark.parametrize("package", PACKAGES)
def test_wheel_imports_alone(package: str, wheels: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run(
        [uv(), "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    siblings = sibling_closure(package, wheels)
    to_install = [str(wheels[package])] + [str(wheels[s]) for s in sorted(siblings)]
    env = uv_env()
    subprocess.run(
        [uv(), "pip", "install", "-q", "--python", str(python), *to_install],
        check=True,
        timeout=600,
        env=env,
    )
    script = IMPORT_ALL.format(siblings=sorted(SIBLINGS), allowed=sorted(siblings))

    def import_all(with_testing: bool) -> None:
        done = subprocess.run(
            [str(python), "-I", "-c", script, package, "1" if with_testing else "0"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "ok 0.1.0"

    import_all(with_testing=False)
    if has_testing_extra(wheels[package]):
        subprocess.run(
            [uv(), "pip", "install", "-q", "--python", str(python)]
            + [f"{wheels[package]}[testing]"]
            + [str(wheels[s]) for s in sorted(siblings)],
            check=True,
            timeout=600,
            env=env,
        )
    import_all(with_testing=True)
