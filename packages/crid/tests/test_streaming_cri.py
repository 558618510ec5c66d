"""Exec, Attach and PortForward on a pod and container made through the CRI only
(RunPodSandbox, CreateContainer, StartContainer): the streaming side against crid's own
lifecycle, with its real CNI network namespace and conmon started with ``--stdin``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crid._cri.v1 import api_pb2

from ._lifecycle import container_config, crid_env, pod_config, run_pod
from ._streaming_client import SpdyClient, spdy_command

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]

SCRIPT = (
    "mkdir -p /www && echo hi-from-cri > /www/index.html && httpd -p 8080 -h /www;"
    " while read line; do echo got:$line; done"
)


async def test_exec_attach_and_port_forward_on_a_cri_made_pod(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, name="stream")
        pod_id = await run_pod(env, pod)
        config = container_config("main", [SCRIPT])
        config.stdin = True
        created = await env.stub.CreateContainer(
            api_pb2.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
        )
        cid = created.container_id
        await env.stub.StartContainer(api_pb2.StartContainerRequest(container_id=cid))

        reply = await env.stub.Exec(
            api_pb2.ExecRequest(container_id=cid, cmd=["hostname"], stdout=True, stderr=True)
        )
        result = await spdy_command(reply.url)
        assert (result.stdout, result.exit_code) == (b"stream-host\n", 0)

        reply = await env.stub.Attach(
            api_pb2.AttachRequest(container_id=cid, stdin=True, stdout=True, stderr=True)
        )
        client = await SpdyClient.connect(reply.url, ["v5.channel.k8s.io"])
        try:
            await client.create_stream({"streamtype": "error"})
            stdin = await client.create_stream({"streamtype": "stdin"})
            stdout = await client.create_stream({"streamtype": "stdout"})
            await client.create_stream({"streamtype": "stderr"})
            await client.write(stdin, b"over attach\n")
            seen = b""
            async with asyncio.timeout(10):
                while b"got:over attach" not in seen:
                    seen += await client.read(stdout)
        finally:
            await client.close()

        reply = await env.stub.PortForward(
            api_pb2.PortForwardRequest(pod_sandbox_id=pod_id, port=[8080])
        )
        client = await SpdyClient.connect(reply.url, ["portforward.k8s.io"])
        try:
            body = b""
            async with asyncio.timeout(10):
                for attempt in range(1000):
                    headers = {"port": "8080", "requestid": str(attempt)}
                    error = await client.create_stream({"streamtype": "error", **headers})
                    data = await client.create_stream({"streamtype": "data", **headers})
                    await client.write(data, b"GET / HTTP/1.0\r\n\r\n")
                    body, failure = await asyncio.gather(
                        client.read_all(data), client.read_all(error)
                    )
                    if not failure:
                        break
                    await asyncio.sleep(0.05)
            assert body.endswith(b"hi-from-cri\n")
        finally:
            await client.close()

        status = await env.stub.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid))
        assert status.status.state == api_pb2.CONTAINER_RUNNING
