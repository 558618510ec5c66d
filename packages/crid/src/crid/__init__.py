"""crid: the CRI runtime daemon."""

from __future__ import annotations

from crid.errors import CridError

__version__ = "0.1.0"

__all__ = ["CridError", "__version__"]
