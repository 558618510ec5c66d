"""Containers: created under conmon from a translated config, run, stopped, removed.

The package exports the plain request type; the orchestration lives in
``crid.container.manager`` (Containers), ``execsync``, ``monitor`` and ``recovery``,
imported from their modules (``crid.translate`` uses the request type, and the
manager uses ``crid.translate``).
"""

from __future__ import annotations

from crid.container.request import ContainerRequest, container_name

__all__ = ["ContainerRequest", "container_name"]
