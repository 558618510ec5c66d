"""Child process of the crash tests: pulls an image from a blob directory into a store.

argv: STORE_DIR BLOB_DIR. BLOB_DIR holds ``image.json`` (the manifest descriptor and
the blob order) and one file per blob. Prints "ready" once the store is open, then
writes the blobs through the pull sink and commits the image; the parent SIGKILLs it
somewhere along the way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ocispec.image import Descriptor
from ocistore import Store


def main() -> None:
    store_dir, blob_dir = Path(sys.argv[1]), Path(sys.argv[2])
    plan = json.loads((blob_dir / "image.json").read_text())
    with Store.open(store_dir, durable=True) as store:
        print("ready", flush=True)
        sink = store.pull_sink()
        for raw in plan["blobs"]:
            desc = Descriptor.from_dict(raw)
            if sink.has_blob(desc.digest):
                continue
            writer = sink.open_blob(desc)
            with (blob_dir / desc.digest.split(":")[1]).open("rb") as fh:
                while chunk := fh.read(1 << 16):
                    writer.write(chunk)
            writer.commit()
        sink.commit_image(manifest=Descriptor.from_dict(plan["manifest"]), names=plan["names"])
        print("done", flush=True)


if __name__ == "__main__":
    main()
