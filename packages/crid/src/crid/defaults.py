"""Working defaults written at first start (``crid serve --init-defaults``).

Only what a node cannot run pods without: a CNI bridge network, written only when the
CNI configuration directory holds no network configuration at all, so an operator's
own network is never touched.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

__all__ = ["DEFAULT_CNI_FILE", "default_cni_conflist", "write_default_cni_config"]

DEFAULT_CNI_FILE = "10-crid-bridge.conflist"
_log = logging.getLogger(__name__)


def default_cni_conflist() -> dict[str, object]:
    """A bridge network for pods with host-local addresses and host ports."""
    return {
        "cniVersion": "1.0.0",
        "name": "crid",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "crid0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "ranges": [[{"subnet": "10.85.0.0/16", "gateway": "10.85.0.1"}]],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def write_default_cni_config(network_dir: Path) -> Path | None:
    """Write the default network into ``network_dir`` if it holds no configuration.

    Returns the file written, or None when the directory already had a configuration.
    """
    network_dir.mkdir(parents=True, exist_ok=True)
    existing = [p for p in network_dir.iterdir() if p.suffix in (".conf", ".conflist", ".json")]
    if existing:
        return None
    target = network_dir / DEFAULT_CNI_FILE
    partial = target.with_name(f".{target.name}.tmp")
    partial.write_text(json.dumps(default_cni_conflist(), indent=2) + "\n")
    partial.replace(target)
    _log.info("wrote default CNI network", extra={"path": str(target)})
    return target
