"""``python -m crid`` runs the ``crid`` command."""

from __future__ import annotations

from crid.entry import main

main()
