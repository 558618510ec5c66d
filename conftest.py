"""Test-suite wide policy shared by every package's tests.

Tests that need root or system binaries carry ``@pytest.mark.root`` or
``@pytest.mark.binaries("runc", "/usr/lib/cni/bridge")``. Elsewhere they are
skipped with a reason; with ``CRID_STRICT_TESTS=1`` (set by ``make test`` and so
by CI) a missing privilege or binary fails the test instead, and any skipped test
fails the run: CI must run every test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

STRICT = os.environ.get("CRID_STRICT_TESTS") == "1"
_skipped: list[str] = []


def _unavailable(reason: str) -> None:
    if STRICT:
        pytest.fail(f"{reason}; CRID_STRICT_TESTS=1 requires every test to run", pytrace=False)
    pytest.skip(reason)


def _binary_found(name: str) -> bool:
    if "/" in name:
        return os.access(name, os.X_OK)
    return shutil.which(name) is not None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") is not None and os.geteuid() != 0:
        _unavailable("needs root")
    for marker in item.iter_markers("binaries"):
        missing = [name for name in marker.args if not _binary_found(name)]
        if missing:
            _unavailable(f"needs binaries not found here: {', '.join(missing)}")


SOAK = os.environ.get("CRID_SOAK") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``soak`` tests run only under ``make soak`` (deselected, not skipped, elsewhere)."""
    if SOAK:
        return
    kept = [item for item in items if item.get_closest_marker("soak") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


# Tests keep their state in tmp_path: these system paths must not appear during a run.
_SYSTEM_PATHS = (Path("/run/crid"), Path("/var/lib/crid"), Path("/var/lib/cni/results"))
_PRESENT_BEFORE = {path for path in _SYSTEM_PATHS if path.exists()}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaked = [p for p in _SYSTEM_PATHS if p.exists() and p not in _PRESENT_BEFORE]
    if leaked:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"tests wrote outside tmp_path: {', '.join(map(str, leaked))}", red=True
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if STRICT and _skipped:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"CRID_STRICT_TESTS=1: {len(_skipped)} test(s) skipped, which CI forbids: "
                + ", ".join(_skipped[:10]),
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's top directory."""
    return Path(__file__).resolve().parent


# -- Shared registry fixtures (ociimage.testing) ---------------------------------------

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ociimage.testing import LocalRegistry, TestImages


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A started local ``docker-registry`` (plain HTTP on 127.0.0.1, no auth), one per session."""
    from ociimage.testing import DOCKER_REGISTRY, LocalRegistry

    if not _binary_found(DOCKER_REGISTRY):
        _unavailable(f"needs binaries not found here: {DOCKER_REGISTRY}")
    with LocalRegistry(workdir=tmp_path_factory.mktemp("registry")) as local:
        yield local


@pytest.fixture(scope="session")
def test_images(registry: LocalRegistry) -> TestImages:
    """The standard images (busybox, layered, user_env, multiplatform), pushed to ``registry``."""
    from ociimage.testing import BUSYBOX, push_test_images

    if not _binary_found(str(BUSYBOX)):
        _unavailable(f"needs binaries not found here: {BUSYBOX}")
    return push_test_images(registry)
