"""Generate crid's CRI and NRI bindings from the protos kept beside them.

``make proto`` runs this with the workspace's pinned grpcio-tools; the drift test
runs it into a temporary directory and compares, so committed code never differs
from what the committed proto produces.
"""

from __future__ import annotations

import argparse
import keyword
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

SRC = Path(__file__).resolve().parent.parent / "packages" / "crid" / "src"
#: Each proto and whether it gets gRPC stubs (the CRI) or only messages (NRI runs
#: over crid's own ttrpc, so its services have no generated stubs).
PROTOS: tuple[tuple[Path, bool], ...] = (
    (Path("crid/_cri/v1/api.proto"), True),
    (Path("crid/_nri/v1alpha1/api.proto"), False),
    (Path("crid/_nri/ttrpc/ttrpc.proto"), False),
)


def outputs(proto: Path, grpc: bool) -> list[Path]:
    """The generated files of ``proto``, relative to the source root."""
    stem = proto.stem
    names = [f"{stem}_pb2.py", f"{stem}_pb2.pyi"] + ([f"{stem}_pb2_grpc.py"] if grpc else [])
    return [proto.parent / name for name in names]


_ANNOTATION = re.compile(r"^\s*(?P<name>\w+):")


def typeable(stub: str) -> str:
    """``stub`` without annotations of names that are Python keywords (NRI's ``Field``
    enum has a value called ``None``): a stub holding them does not parse."""
    lines = stub.splitlines(keepends=True)
    return "".join(
        line
        for line in lines
        if not ((m := _ANNOTATION.match(line)) and keyword.iskeyword(m["name"]))
    )


def generate(out_dir: Path) -> list[Path]:
    """Write the generated modules for every proto under ``out_dir`` (a source root)."""
    written = []
    include = Path(protoc.__file__).parent / "_proto"
    for proto, grpc in PROTOS:
        with tempfile.TemporaryDirectory() as tmp:
            args = [
                "grpc_tools.protoc",
                f"-I{SRC}",
                f"-I{include}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                *([f"--grpc_python_out={tmp}"] if grpc else []),
                str(SRC / proto),
            ]
            if protoc.main(args) != 0:
                raise SystemExit(f"protoc failed on {proto}")
            for relative in outputs(proto, grpc):
                target = out_dir / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                source = Path(tmp) / relative
                if target.suffix == ".pyi":
                    target.write_text(typeable(source.read_text()))
                else:
                    shutil.copyfile(source, target)
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
