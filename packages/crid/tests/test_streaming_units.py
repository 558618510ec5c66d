"""The remote-command protocol details that need no container: statuses and resize decoding."""

from __future__ import annotations

import json

from crid.streaming.remotecommand import (
    TerminalSize,
    exit_status,
    failure_status,
    resize_events,
    structured_status,
)


class Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    async def read(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


def test_statuses_as_client_go_reads_them() -> None:
    assert structured_status("v4.channel.k8s.io") and structured_status("v5.channel.k8s.io")
    assert not structured_status("v3.channel.k8s.io") and not structured_status("channel.k8s.io")
    assert json.loads(exit_status(0, structured=True)) == {"metadata": {}, "status": "Success"}
    assert exit_status(0, structured=False) == b""
    failed = json.loads(exit_status(42, structured=True))
    assert failed["status"] == "Failure" and failed["reason"] == "NonZeroExitCode"
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "42"}]
    assert b"42" in exit_status(42, structured=False)
    broken = json.loads(failure_status("no such container", structured=True))
    assert broken["status"] == "Failure" and broken["message"] == "no such container"
    assert failure_status("boom", structured=False) == b"boom"


async def test_resize_events_across_chunk_boundaries() -> None:
    reader = Chunks(
        b'{"Width":80,"Hei',
        b'ght":24}\n{"Width":1',
        b'00,"Height":40}{"Width":0,',
        b'"Height":5}\n{"nonsense":1}\n{"Width":7,"Height":9}\n',
    )
    sizes = [size async for size in resize_events(reader)]
    assert sizes == [
        TerminalSize(width=80, height=24),
        TerminalSize(width=100, height=40),
        TerminalSize(width=7, height=9),
    ]
