"""The committed CRI bindings are exactly what the committed proto generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GENERATED = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")


def test_committed_bindings_match_fresh_generation(repo_root: Path, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "gen_proto.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = repo_root / "packages" / "crid" / "src" / "crid" / "_cri" / "v1"
    fresh = tmp_path / "crid" / "_cri" / "v1"
    for name in GENERATED:
        assert (committed / name).read_bytes() == (fresh / name).read_bytes(), (
            f"{name} differs from a fresh generation: run `make proto` and commit the result"
        )


def test_proto_is_the_shipped_cri_api(repo_root: Path) -> None:
    proto = repo_root / "packages" / "crid" / "src" / "crid" / "_cri" / "v1" / "api.proto"
    text = proto.read_text()
    assert "Licensed under the Apache License, Version 2.0" in text
    assert "package runtime.v1;" in text
    assert (proto.parent / "LICENSE").is_file()
