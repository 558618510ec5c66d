"""Child process of the hostile-layer tests: unpack one layer blob, report peak memory.

argv: BLOB MEDIA_TYPE DEST LIMITS_JSON NOFILE. Runs ``ocistore.unpack_layer`` on the
blob file (streamed, as the store does), with ``UnpackLimits(**LIMITS_JSON)`` and, if
NOFILE > 0, the descriptor limit lowered to NOFILE. Files are capped at 256 MiB
(RLIMIT_FSIZE) so an unpacker that writes holes out fails instead of filling the disk.
Prints one JSON line: the error (class and message) or the result, and VmHWM (peak
RSS, KiB) before and after.
"""

from __future__ import annotations

import json
import resource
import signal
import sys

from ocistore import StoreError, UnpackLimits, UnpackOptions, unpack_layer


def _peak_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    blob, media_type, dest, limits, nofile = sys.argv[1:6]
    options = UnpackOptions(limits=UnpackLimits(**json.loads(limits)))
    if int(nofile) > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(nofile), hard))
    # A regression must fail the test, not fill the disk: no file beyond 256 MiB (EFBIG).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _, fsize_hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, fsize_hard))
    before = _peak_kib()
    out: dict[str, object] = {}
    try:
        with open(blob, "rb") as fh:
            result = unpack_layer(fh, dest, media_type=media_type, options=options)
        out["entries"] = result.entries
    except StoreError as err:
        out["error"] = type(err).__name__
        out["message"] = str(err)
    out["peak_before_kib"] = before
    out["peak_after_kib"] = _peak_kib()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
