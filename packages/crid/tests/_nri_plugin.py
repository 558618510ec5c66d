"""A test NRI plugin, run as its own process against crid's real NRI socket.

    python _nri_plugin.py CONTROL_DIR [--name NAME --index NN --socket PATH]

(name, index and socket may instead come from NRI_PLUGIN_* as for a pre-installed
plugin). It appends one JSON line per call to CONTROL_DIR/events.jsonl and reads its
behaviour from CONTROL_DIR/<name>.json, re-read on every call:

- ``block``: events that wait until the file CONTROL_DIR/release-<name>-<Event> exists;
- ``hang``: events that never answer;
- ``fail_once``: events answered with an error the first time;
- ``adjust``: a ContainerAdjustment (protobuf JSON) returned from CreateContainer;
- ``update_memory``: UpdateContainer answers with this memory limit for the container;
- ``push_memory``: on PostStartContainer, ask UpdateContainers for this memory limit;
- ``reject_annotation``: ValidateContainerAdjustment rejects adjustments setting it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from crid.nri import Plugin, Stub, api


class Recorder(Plugin):
    def __init__(self, control: Path, name: str) -> None:
        self.control = control
        self.name = name
        self.failed: set[str] = set()
        self.stub: Stub | None = None

    def behaviour(self) -> dict[str, Any]:
        path = self.control / f"{self.name}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def record(self, event: str, **fields: Any) -> None:
        line = json.dumps({"plugin": self.name, "event": event, "time": time.time(), **fields})
        with open(self.control / "events.jsonl", "a") as log:
            log.write(line + "\n")

    async def react(self, event: str, **fields: Any) -> dict[str, Any]:
        self.record(event, **fields)
        behaviour = self.behaviour()
        if event in behaviour.get("hang", ()):
            await asyncio.sleep(3600)
        if event in behaviour.get("block", ()):
            release = self.control / f"release-{self.name}-{event}"
            while not release.exists():  # noqa: ASYNC110 - another process makes the file
                await asyncio.sleep(0.02)
        if event in behaviour.get("fail_once", ()) and event not in self.failed:
            self.failed.add(event)
            raise RuntimeError(f"induced {event} failure")
        return behaviour

    async def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        self.record("Configure", config=config, runtime=runtime_name)

    async def shutdown(self) -> None:
        self.record("Shutdown")

    async def synchronize(self, pods: Any, containers: Any) -> list[api.ContainerUpdate] | None:
        await self.react(
            "Synchronize",
            pods=[p.id for p in pods],
            containers=[c.id for c in containers],
            pod_shares={p.id: p.linux.pod_resources.cpu.shares.value for p in pods},
        )
        return None

    async def run_pod_sandbox(self, pod: api.PodSandbox) -> None:
        await self.react("RunPodSandbox", pod=pod.id, name=pod.name)

    async def stop_pod_sandbox(self, pod: api.PodSandbox) -> None:
        await self.react("StopPodSandbox", pod=pod.id)

    async def remove_pod_sandbox(self, pod: api.PodSandbox) -> None:
        await self.react("RemovePodSandbox", pod=pod.id)

    async def update_pod_sandbox(
        self, pod: api.PodSandbox, overhead: api.LinuxResources, resources: api.LinuxResources
    ) -> None:
        await self.react(
            "UpdatePodSandbox",
            pod=pod.id,
            shares=resources.cpu.shares.value,
            overhead_shares=overhead.cpu.shares.value,
        )

    async def post_update_pod_sandbox(self, pod: api.PodSandbox) -> None:
        await self.react("PostUpdatePodSandbox", pod=pod.id)

    async def create_container(
        self, pod: api.PodSandbox, container: api.Container
    ) -> api.ContainerAdjustment | None:
        behaviour = await self.react(
            "CreateContainer",
            pod=pod.id,
            container=container.id,
            name=container.name,
            args=list(container.args),
        )
        if "adjust" in behaviour:
            return json_format.ParseDict(behaviour["adjust"], api.ContainerAdjustment())
        return None

    async def post_create_container(self, pod: api.PodSandbox, container: api.Container) -> None:
        await self.react("PostCreateContainer", pod=pod.id, container=container.id)

    async def start_container(self, pod: api.PodSandbox, container: api.Container) -> None:
        await self.react("StartContainer", pod=pod.id, container=container.id)

    async def post_start_container(self, pod: api.PodSandbox, container: api.Container) -> None:
        behaviour = await self.react("PostStartContainer", pod=pod.id, container=container.id)
        if "push_memory" in behaviour and self.stub is not None:
            update = api.ContainerUpdate(container_id=container.id)
            update.linux.resources.memory.limit.value = behaviour["push_memory"]
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.push(update)))

    async def push(self, update: api.ContainerUpdate) -> None:
        assert self.stub is not None
        failed = await self.stub.update_containers([update])
        self.record("UpdateContainersDone", failed=[u.container_id for u in failed])

    async def update_container(
        self, pod: api.PodSandbox, container: api.Container, resources: api.LinuxResources
    ) -> list[api.ContainerUpdate] | None:
        behaviour = await self.react(
            "UpdateContainer",
            pod=pod.id,
            container=container.id,
            memory=resources.memory.limit.value,
        )
        if "update_memory" not in behaviour:
            return None
        update = api.ContainerUpdate(container_id=container.id)
        update.linux.resources.CopyFrom(resources)
        update.linux.resources.memory.limit.value = behaviour["update_memory"]
        return [update]

    async def post_update_container(self, pod: api.PodSandbox, container: api.Container) -> None:
        await self.react("PostUpdateContainer", pod=pod.id, container=container.id)

    async def stop_container(
        self, pod: api.PodSandbox, container: api.Container
    ) -> list[api.ContainerUpdate] | None:
        await self.react("StopContainer", pod=pod.id, container=container.id, state=container.state)
        return None

    async def remove_container(self, pod: api.PodSandbox, container: api.Container) -> None:
        await self.react("RemoveContainer", pod=pod.id, container=container.id)

    async def validate_container_adjustment(
        self, request: api.ValidateContainerAdjustmentRequest
    ) -> str | None:
        owners = request.owners.owners[request.container.id]
        annotations = dict(owners.compound[api.Annotations].owners)
        behaviour = await self.react(
            "ValidateContainerAdjustment",
            pod=request.pod.id,
            container=request.container.id,
            plugins=[f"{p.index}-{p.name}" for p in request.plugins],
            annotation_owners=annotations,
            annotations=dict(request.adjust.annotations),
        )
        wanted = behaviour.get("reject_annotation")
        if wanted and wanted in annotations:
            return f"{annotations[wanted]} may not set {wanted}"
        return None


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("control", type=Path)
    parser.add_argument("--name", default="")
    parser.add_argument("--index", default="")
    parser.add_argument("--socket", default="")
    args = parser.parse_args()
    stub = Stub(
        Recorder(args.control, args.name or "?"),
        name=args.name,
        index=args.index,
        socket_path=args.socket,
    )
    plugin = stub.plugin
    assert isinstance(plugin, Recorder)
    plugin.name = stub.name
    plugin.stub = stub
    await stub.connect()
    plugin.record("Ready")
    await stub.wait_closed()
    plugin.record("Closed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
