"""Fixtures for ocinet's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocinet.testing import FakePlugins


@pytest.fixture
def fake_plugins(tmp_path: Path) -> FakePlugins:
    """A plugin directory with fake plugins ``fake-a``, ``fake-b``, ``fake-c`` and a call log."""
    return FakePlugins(tmp_path / "plugins")
