"""ocinet: CNI plugin invocation and pinned namespaces."""

from __future__ import annotations

from ocinet.errors import NetError

__version__ = "0.1.0"

__all__ = ["NetError", "__version__"]
