"""Runtime handlers are resolved once and kept while their binaries stay executable: a
removed binary is looked for again (and reported missing), a restored one found again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crid.errors import RuntimeHandlerError

from ._lifecycle import crid_env

pytestmark = [pytest.mark.root, pytest.mark.binaries("runc", "conmon", "/usr/lib/cni/bridge")]


async def test_a_handler_is_kept_until_its_binary_goes(tmp_path: Path) -> None:
    runc = shutil.which("runc")
    assert runc is not None
    wrapper = tmp_path / "bin" / "runc"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {runc} "$@"\n')
    wrapper.chmod(0o755)
    lines = f'[crid.runtime.runtimes.runc]\nruntime_path = "{wrapper}"\n'
    async with crid_env(tmp_path, lines) as env:
        ctx = env.daemon.context
        assert ctx is not None
        first = ctx.handler()
        assert first.runtime.binary == wrapper
        assert ctx.handler() is first
        assert ctx.handler("runc") is ctx.handler("runc")
        wrapper.unlink()
        with pytest.raises(RuntimeHandlerError, match="runtime binary not found"):
            ctx.handler()
        wrapper.write_text(f'#!/bin/sh\nexec {runc} "$@"\n')
        with pytest.raises(RuntimeHandlerError):
            ctx.handler()  # not executable: still not a runtime
        wrapper.chmod(0o755)
        again = ctx.handler()
        assert again is not first and again.runtime.binary == wrapper
        assert ctx.handler() is again
        wrapper.chmod(0o644)  # the kept handler's binary stops being executable
        with pytest.raises(RuntimeHandlerError):
            ctx.handler()
