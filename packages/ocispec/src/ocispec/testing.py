"""Test helpers for users of ocispec: hypothesis strategies for any model.

Needs ``hypothesis`` (not a runtime dependency of ocispec)::

    from hypothesis import given
    from ocispec.testing import models
    from ocispec.image import Manifest

    @given(models(Manifest))
    def test_round_trip(m: Manifest) -> None:
        assert Manifest.from_json(m.to_json()) == m
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

from ocispec._model import JSONModel

__all__ = ["json_values", "models"]

M = TypeVar("M", bound=JSONModel)

_text = st.text(st.characters(codec="utf-8"), max_size=12)


def json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON values (no NaN or infinities), small and shallow."""
    leaves: st.SearchStrategy[Any] = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        _text,
        st.floats(allow_nan=False, allow_infinity=False),
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
        max_leaves=6,
    )


def _for_type(tp: Any, depth: int) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return json_values()
    if origin in (typing.Union, types.UnionType):
        inner = next(a for a in args if a is not type(None))
        if depth > 3 and isinstance(inner, type) and issubclass(inner, JSONModel):
            return st.none()
        return st.none() | _for_type(inner, depth)
    if tp is str or (isinstance(tp, type) and issubclass(tp, str)):
        return _text
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-(2**63), 2**64 - 1)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is bytes:
        return st.binary(max_size=16)
    if origin is frozenset:
        return st.frozensets(_text, max_size=3)
    if origin in (Sequence, tuple, list):
        return st.lists(_for_type(args[0], depth + 1), max_size=3 if depth < 3 else 1).map(tuple)
    if origin in (Mapping, dict):
        return st.dictionaries(_text, _for_type(args[1], depth + 1), max_size=3 if depth < 3 else 1)
    if isinstance(tp, type) and issubclass(tp, JSONModel):
        return _models(tp, depth + 1)
    raise TypeError(f"no strategy for {tp!r}")


def _models(cls: type[M], depth: int) -> st.SearchStrategy[M]:
    hints = typing.get_type_hints(cls)
    compiled = cls._compiled()
    known = {c.json_name for c in compiled}
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for f in dataclasses.fields(cls):
        if f.name == "extra":
            continue
        kwargs[f.name] = _for_type(hints[f.name], depth)
    extra_keys = _text.filter(lambda k: k not in known)
    kwargs["extra"] = st.dictionaries(extra_keys, json_values(), max_size=2)
    return st.builds(cls, **kwargs)


def models(cls: type[M]) -> st.SearchStrategy[M]:
    """Instances of the model ``cls`` with every field (and some unknown keys) filled at random."""
    return _models(cls, 0)
