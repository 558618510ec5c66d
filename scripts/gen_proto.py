"""Generate crid's CRI bindings from the proto kept beside them.

``make proto`` runs this with the workspace's pinned grpcio-tools; the drift test
runs it into a temporary directory and compares, so committed code never differs
from what the committed proto produces.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

SRC = Path(__file__).resolve().parent.parent / "packages" / "crid" / "src"
PROTO = Path("crid/_cri/v1/api.proto")
OUTPUTS = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")


def generate(out_dir: Path) -> list[Path]:
    """Write the generated modules for ``PROTO`` under ``out_dir`` (a source root)."""
    with tempfile.TemporaryDirectory() as tmp:
        include = Path(protoc.__file__).parent / "_proto"
        args = [
            "grpc_tools.protoc",
            f"-I{SRC}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            str(SRC / PROTO),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        written = []
        for name in OUTPUTS:
            target = out_dir / PROTO.parent / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp) / PROTO.parent / name, target)
            written.append(target)
        return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=SRC, help="source root to write into")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
