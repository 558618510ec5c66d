"""Generated NRI and ttrpc bindings (see scripts/gen_proto.py)."""
