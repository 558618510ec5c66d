"""Real faults for the reliability tests: small file systems that fill up, and
wrappers placed in front of the real runc or a CNI plugin that hang or fail on cue.

Nothing here is a mock: the file systems are tmpfs mounts of a few megabytes, the
wrappers are shell scripts that, once their marker file is gone, exec the real binary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "fill",
    "fill_inodes",
    "hanging_cni_plugin",
    "runc_wrapper",
    "small_fs",
]


@contextlib.contextmanager
def small_fs(path: Path, *, size: str = "64m", inodes: int = 0) -> Iterator[Path]:
    """A tmpfs of ``size`` (and at most ``inodes`` inodes) mounted at ``path``; it is
    unmounted (lazily, with whatever was mounted below it) afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0755" + (f",nr_inodes={inodes}" if inodes else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-R", "-l", str(path)], check=False, capture_output=True)


def fill(path: Path, leave: int = 0) -> Path:
    """Take the free space of ``path``'s file system, leaving about ``leave`` bytes;
    returns the filler file (remove it to free the space)."""
    filler = path / f".filler-{len(list(path.glob('.filler-*')))}"
    stat = os.statvfs(path)
    free = stat.f_bavail * stat.f_frsize
    with filler.open("wb") as handle:
        if free > leave:
            os.posix_fallocate(handle.fileno(), 0, free - leave)
    return filler


def fill_inodes(path: Path) -> Path:
    """Use up the free inodes of ``path``'s file system; returns the directory holding
    the filler files (remove it to free them)."""
    holder = path / ".inodes"
    holder.mkdir()
    count = 0
    with contextlib.suppress(OSError):
        while True:
            (holder / str(count)).touch()
            count += 1
    return holder


def runc_wrapper(directory: Path) -> Path:
    """A ``runc`` that waits while ``<directory>/hang-<command>`` exists, exits 1 with a
    message while ``fail-<command>`` exists, and otherwise runs the real runc.

    While it waits it keeps its arguments (the container id among them), as a hung
    runc does, so crid's clean-up can find and kill it.
    """
    real = shutil.which("runc")
    assert real is not None
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "runc"
    script.write_text(
        "#!/bin/sh\n"
        f'dir="{directory}"\n'
        'cmd=""; skip=""\n'
        'for arg in "$@"; do\n'
        '  if [ -n "$skip" ]; then skip=""; continue; fi\n'
        '  case "$arg" in\n'
        "    --root|--log|--log-format|--criu) skip=1;;\n"
        "    -*) ;;\n"
        '    *) cmd="$arg"; break;;\n'
        "  esac\n"
        "done\n"
        'echo "$$ $cmd start" >> "$dir/calls"\n'
        'while [ -e "$dir/hang-$cmd" ]; do sleep 0.05; done\n'
        'if [ -e "$dir/fail-$cmd" ]; then echo "injected failure of $cmd" >&2; exit 1; fi\n'
        f'exec {real} "$@"\n'
    )
    script.chmod(0o755)
    return script


def hanging_cni_plugin(directory: Path, name: str) -> Path:
    """A CNI plugin ``name`` that hangs while ``<directory>/hang-<COMMAND>`` exists,
    fails (a CNI error on stdout) while ``fail-<COMMAND>`` exists, and otherwise
    passes its previous result through (so it can end a real chain)."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text(
        "#!/usr/bin/python3\n"
        "import json, os, sys, time\n"
        f"directory = {str(directory)!r}\n"
        "command = os.environ.get('CNI_COMMAND', '')\n"
        "conf = json.loads(sys.stdin.read() or '{}')\n"
        "with open(os.path.join(directory, 'calls'), 'a') as log:\n"
        "    log.write(f\"{os.getpid()} {command} {os.environ.get('CNI_CONTAINERID', '')}\\n\")\n"
        "while os.path.exists(os.path.join(directory, 'hang-' + command)):\n"
        "    time.sleep(0.05)\n"
        "if os.path.exists(os.path.join(directory, 'fail-' + command)):\n"
        "    print(json.dumps({'cniVersion': '1.0.0', 'code': 999,\n"
        "                      'msg': f'injected {command} failure'}))\n"
        "    sys.exit(1)\n"
        "if command == 'ADD':\n"
        "    print(json.dumps(conf.get('prevResult') or {'cniVersion': '1.0.0'}))\n"
        "elif command == 'VERSION':\n"
        "    print(json.dumps({'cniVersion': '1.0.0',\n"
        "                      'supportedVersions': ['0.3.0', '0.3.1', '0.4.0', '1.0.0']}))\n"
    )
    script.chmod(0o755)
    return script
