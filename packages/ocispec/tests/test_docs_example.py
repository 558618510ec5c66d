"""The example in docs/ocispec.md runs as written and prints what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "ocispec.md"


def _example() -> tuple[str, list[str]]:
    text = DOC.read_text()
    section = text.split("## Example", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    after_print = code.group(1).split("print(out.stdout)\n", 1)[1]
    expected = [
        line.removeprefix("# ") for line in after_print.splitlines() if line.startswith("# ")
    ]
    return code.group(1), expected


@pytest.mark.root
@pytest.mark.binaries("runc", "/bin/busybox")
def test_docs_example_runs() -> None:
    code, expected = _example()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {"__name__": "docs_example"})
    assert out.getvalue().split("\n")[: len(expected)] == expected
