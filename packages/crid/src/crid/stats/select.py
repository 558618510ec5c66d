"""Choosing records the way the CRI's list filters do: id (or unique prefix), pod, state,
and a label selector where every key must be present with the same value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crid.state import Container, ContainerState, Registry, Sandbox, SandboxState

__all__ = ["labels_match", "running_by_pod", "select_containers", "select_sandboxes"]


def labels_match(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    """True when every ``selector`` key is in ``labels`` with the same value."""
    return all(labels.get(key) == value for key, value in selector.items())


def running_by_pod(registry: Registry) -> dict[str, list[Container]]:
    """The RUNNING containers of every pod, in one pass (not one scan per pod)."""
    found: dict[str, list[Container]] = {}
    for container in registry.containers():
        if container.state == ContainerState.RUNNING:
            found.setdefault(container.sandbox_id, []).append(container)
    return found


def _by_id(records: Iterable[Sandbox] | Iterable[Container], id_or_prefix: str) -> list[str]:
    ids = [record.id for record in records]
    if id_or_prefix in ids:
        return [id_or_prefix]
    matches = [rid for rid in ids if rid.startswith(id_or_prefix)]
    return matches if len(matches) == 1 else []


def select_sandboxes(
    registry: Registry,
    *,
    id_or_prefix: str = "",
    states: Iterable[SandboxState] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Sandbox]:
    """Sandboxes matching every given criterion (an ambiguous prefix matches none)."""
    records: Iterable[Sandbox] = registry.sandboxes()
    if id_or_prefix:
        wanted = set(_by_id(registry.sandboxes(), id_or_prefix))
        records = [s for s in records if s.id in wanted]
    if states is not None:
        allowed = set(states)
        records = [s for s in records if s.state in allowed]
    if labels:
        records = [s for s in records if labels_match(s.labels, labels)]
    return list(records)


def select_containers(
    registry: Registry,
    *,
    id_or_prefix: str = "",
    sandbox_id: str = "",
    states: Iterable[ContainerState] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Container]:
    """Containers matching every given criterion; ``sandbox_id`` may be a unique prefix."""
    records: list[Container] = registry.containers()
    if id_or_prefix:
        wanted = set(_by_id(records, id_or_prefix))
        records = [c for c in records if c.id in wanted]
    if sandbox_id:
        pods = set(_by_id(registry.sandboxes(), sandbox_id)) or {sandbox_id}
        records = [c for c in records if c.sandbox_id in pods]
    if states is not None:
        allowed = set(states)
        records = [c for c in records if c.state in allowed]
    if labels:
        records = [c for c in records if labels_match(c.labels, labels)]
    return records
