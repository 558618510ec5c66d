"""grpc.aio's own floor for the List and Status RPCs: a server that only answers.

The floor server is a bare ``grpc.aio`` server in its own process, on its own unix
socket, that answers each CRI method with the bytes crid answered it with (captured
just before), doing nothing else: what is left of a call to it is the transport, the
client and grpc.aio's own per-call work. ``list_status.py --floor`` times the same
clients against it, so crid's own share of each RPC is its time minus the floor's.

Run as ``python _grpc_floor.py SOCKET ANSWERS.json`` (what :func:`floor_server` does).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc

from crid._cri.v1 import api_pb2

__all__ = ["STREAMS", "UNARY", "capture", "floor_server"]

SERVICE = "/runtime.v1.RuntimeService/"
#: The unary RPCs timed, each with the request the clients send (by pod or container).
UNARY = (
    "Version",
    "Status",
    "ListPodSandboxMetrics",
    "ListMetricDescriptors",
    "ListPodSandbox",
    "ListContainers",
    "PodSandboxStatus",
    "ContainerStatus",
    "ListContainerStats",
    "ListPodSandboxStats",
    "ContainerStats",
)
STREAMS = ("StreamPodSandboxes", "StreamContainers")


def _request(method: str, pod: str, container: str) -> bytes:
    message: Any = getattr(api_pb2, f"{method}Request")()
    if method in ("PodSandboxStatus",):
        message.pod_sandbox_id = pod
    if method in ("ContainerStatus", "ContainerStats"):
        message.container_id = container
    return bytes(message.SerializeToString())


def capture(channel: grpc.Channel, pod: str, container: str) -> dict[str, list[bytes]]:
    """Each method's answer as bytes (a stream's as its messages), from crid."""
    found: dict[str, list[bytes]] = {}
    for method in UNARY:
        call = channel.unary_unary(SERVICE + method)
        found[method] = [call(_request(method, pod, container), timeout=10)]
    for method in STREAMS:
        stream = channel.unary_stream(SERVICE + method)
        found[method] = list(stream(_request(method, pod, container), timeout=10))
    return found


@contextlib.contextmanager
def floor_server(workdir: Path, answers: dict[str, list[bytes]]) -> Iterator[Path]:
    """A floor server answering ``answers`` on a socket in ``workdir``; its path."""
    workdir.mkdir(parents=True, exist_ok=True)
    sock = workdir / "floor.sock"
    file = workdir / "answers.json"
    file.write_text(
        json.dumps({m: [base64.b64encode(b).decode() for b in bs] for m, bs in answers.items()})
    )
    proc = subprocess.Popen([sys.executable, __file__, str(sock), str(file)])
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the grpc.aio floor server did not start")
            time.sleep(0.005)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def _serve(sock: Path, answers: dict[str, list[bytes]]) -> None:
    def unary(answer: bytes) -> Any:
        async def handle(request: bytes, context: Any) -> bytes:
            return answer

        return grpc.unary_unary_rpc_method_handler(handle)

    def stream(chunks: list[bytes]) -> Any:
        async def handle(request: bytes, context: Any) -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        return grpc.unary_stream_rpc_method_handler(handle)

    handlers = {m: unary(answers[m][0]) for m in UNARY}
    handlers.update({m: stream(answers[m]) for m in STREAMS})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("runtime.v1.RuntimeService", handlers),)
    )
    server.add_insecure_port(f"unix://{sock}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    raw = json.loads(Path(sys.argv[2]).read_text())
    decoded = {m: [base64.b64decode(b) for b in bs] for m, bs in raw.items()}
    asyncio.run(_serve(Path(sys.argv[1]), decoded))
