"""The committed CRI and NRI bindings are exactly what the committed protos generate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path("packages") / "crid" / "src"
GENERATED = (
    "crid/_cri/v1/api_pb2.py",
    "crid/_cri/v1/api_pb2.pyi",
    "crid/_cri/v1/api_pb2_grpc.py",
    "crid/_nri/v1alpha1/api_pb2.py",
    "crid/_nri/v1alpha1/api_pb2.pyi",
    "crid/_nri/ttrpc/ttrpc_pb2.py",
    "crid/_nri/ttrpc/ttrpc_pb2.pyi",
)


def test_committed_bindings_match_fresh_generation(repo_root: Path, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "gen_proto.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = repo_root / SRC
    for name in GENERATED:
        assert (committed / name).read_bytes() == (tmp_path / name).read_bytes(), (
            f"{name} differs from a fresh generation: run `make proto` and commit the result"
        )


@pytest.mark.parametrize(
    ("proto", "package"),
    [
        ("crid/_cri/v1/api.proto", "package runtime.v1;"),
        ("crid/_nri/v1alpha1/api.proto", "package nri.pkg.api.v1alpha1;"),
    ],
)
def test_protos_are_the_shipped_apis(repo_root: Path, proto: str, package: str) -> None:
    path = repo_root / SRC / proto
    text = path.read_text()
    assert "Licensed under the Apache License, Version 2.0" in text
    assert package in text
    assert (path.parent / "LICENSE").is_file()
