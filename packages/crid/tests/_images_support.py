"""Shared helpers of the image service tests: a daemon configured for a test registry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import grpc

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import Config
from crid.server import Daemon

from .conftest import make_config

ACCEPT_ALL = {"default": [{"type": "insecureAcceptAnything"}]}


def image_config(
    tmp_path: Path,
    insecure_hosts: Iterable[str],
    *,
    policy: dict[str, object] | None = None,
    auth_file: Path | None = None,
    extra: str = "",
) -> Config:
    """A crid config whose registries.conf trusts ``insecure_hosts`` over plain HTTP.

    Policy, registries.conf and registries.d all live in ``tmp_path``; the host's
    files are never read.
    """
    conf = tmp_path / "registries.conf"
    conf.write_text(
        "".join(f'[[registry]]\nlocation = "{h}"\ninsecure = true\n' for h in insecure_hosts)
    )
    policy_path = tmp_path / "policy.json"
    policy_path.write_text(json.dumps(policy or ACCEPT_ALL))
    table = (
        "[crid.image]\n"
        f'registries_conf = "{conf}"\n'
        f'registries_conf_dir = "{tmp_path / "registries.conf.d"}"\n'
        f'signature_policy = "{policy_path}"\n'
        f'registries_d = "{tmp_path / "registries.d"}"\n'
        f'global_auth_file = "{auth_file or ""}"\n'
    ) + extra
    return make_config(tmp_path, table)[1]


@asynccontextmanager
async def running(
    config: Config,
) -> AsyncIterator[tuple[Daemon, api_pb2_grpc.ImageServiceStub]]:
    """A started daemon and an ImageService client on its socket."""
    daemon = Daemon(config)
    await daemon.start()
    try:
        async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as channel:
            yield daemon, api_pb2_grpc.ImageServiceStub(channel)
    finally:
        await daemon.stop(grace=0)


@asynccontextmanager
async def image_service(config: Config) -> AsyncIterator[api_pb2_grpc.ImageServiceStub]:
    """Only the client of :func:`running`."""
    async with running(config) as (_, stub):
        yield stub


def spec(name: str, **annotations: str) -> api_pb2.ImageSpec:
    return api_pb2.ImageSpec(image=name, annotations=annotations)


async def pull(stub: api_pb2_grpc.ImageServiceStub, name: str, **annotations: str) -> str:
    reply = await stub.PullImage(api_pb2.PullImageRequest(image=spec(name, **annotations)))
    return str(reply.image_ref)


async def status(stub: api_pb2_grpc.ImageServiceStub, name: str) -> api_pb2.ImageStatusResponse:
    reply: api_pb2.ImageStatusResponse = await stub.ImageStatus(
        api_pb2.ImageStatusRequest(image=spec(name), verbose=True)
    )
    return reply
