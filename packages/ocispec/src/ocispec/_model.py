"""The JSON codec behind every ocispec model.

Models are frozen, keyword-only dataclasses deriving from :class:`JSONModel`. Each field
names its JSON key with :func:`jfield`; the codec is compiled once per class from the
type hints:

* ``str``/``int``/``bool``/``float`` are checked strictly (``true`` is not an integer);
* ``X | None`` is a Go pointer: ``None`` is omitted, any other value (also ``0``) is written;
* ``Sequence[X]`` becomes a tuple, ``Mapping[str, X]`` a :class:`FrozenDict`; JSON ``null``
  decodes to the empty value, as Go's nil slices and maps do;
* ``frozenset[str]`` is a Go ``map[string]struct{}`` (``{"80/tcp": {}}``);
* ``bytes`` is base64 text, as Go writes ``[]byte``;
* nested models decode recursively, ``Any`` keeps the raw JSON value.

``omitempty`` follows Go's encoding/json: a zero value (``""``, ``0``, ``False``, empty
sequence or mapping) of a non-pointer field is left out. Keys a model does not know are
kept in ``extra`` and written back after the known ones, so documents from newer or other
writers survive a round trip. ``from_json(x.to_json()) == x`` holds for every model.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Self, TypeVar, dataclass_transform

from ocispec.errors import DecodeError

__all__ = ["FrozenDict", "JSONModel", "jfield", "model"]

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(Mapping[K, V]):
    """An immutable, hashable mapping that compares equal to a ``dict`` with the same items."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[K, V] | None = None) -> None:
        self._data: dict[K, V] = dict(data) if data is not None else {}
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return repr(self._data)

    def __or__(self, other: Mapping[K, V]) -> FrozenDict[K, V]:
        return FrozenDict({**self._data, **other})


_META_KEY = "ocispec"


# The codec's own records are plain classes: each dataclass costs an importer about a
# millisecond (it compiles its methods), and these are built once per model field.


class _FieldMeta:
    __slots__ = ("json_name", "omitempty")

    def __init__(self, json_name: str, omitempty: bool) -> None:
        self.json_name = json_name
        self.omitempty = omitempty


def jfield(
    json_name: str,
    *,
    omitempty: bool = True,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """Declare a model field written to JSON as ``json_name``.

    Without ``default``/``default_factory`` the field is required in the constructor and
    in the JSON document.
    """
    meta = {_META_KEY: _FieldMeta(json_name, omitempty)}
    if default is not dataclasses.MISSING:
        return dataclasses.field(default=default, metadata=meta)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(metadata=meta)


M = TypeVar("M", bound=type)


@dataclass_transform(
    frozen_default=True, kw_only_default=True, field_specifiers=(jfield, dataclasses.field)
)
def model(cls: M) -> M:
    """Class decorator of the models: a frozen, keyword-only dataclass."""
    return dataclasses.dataclass(frozen=True, kw_only=True)(cls)  # type: ignore[return-value]


Decoder = Callable[[Any, str], Any]
Encoder = Callable[[Any], Any]
Normalizer = Callable[[Any], Any]


class _Codec:
    """How one field type decodes, encodes, normalizes and tests for emptiness.

    ``encode_value``: ``encode`` of a value that is not None; None when that is the value
    itself. ``falsy_empty``: whether ``is_empty`` of a value that is not None is
    ``not value`` (else: never). ``keeps_models``: whether ``normalize`` returns every
    model instance as it is.
    """

    __slots__ = (
        "decode",
        "encode",
        "encode_value",
        "falsy_empty",
        "is_empty",
        "keeps_models",
        "normalize",
    )

    def __init__(
        self,
        decode: Decoder,
        encode: Encoder,
        normalize: Normalizer,
        is_empty: Callable[[Any], bool],
        *,
        encode_value: Encoder | None = None,
        falsy_empty: bool = False,
        keeps_models: bool = False,
    ) -> None:
        self.decode = decode
        self.encode = encode
        self.normalize = normalize
        self.is_empty = is_empty
        self.encode_value = encode_value
        self.falsy_empty = falsy_empty
        self.keeps_models = keeps_models


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _ident(value: Any) -> Any:
    return value


def _scalar_codec(kind: type) -> _Codec:
    expected = {str: "string", int: "integer", bool: "boolean", float: "number"}[kind]

    def decode(value: Any, path: str) -> Any:
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise DecodeError(f"expected {expected}, got {_type_name(value)}", path)
        return value

    return _Codec(decode, _ident, _ident, lambda v: not v, falsy_empty=True)


def _bytes_codec() -> _Codec:
    def decode(value: Any, path: str) -> bytes:
        if not isinstance(value, str):
            raise DecodeError(f"expected base64 string, got {_type_name(value)}", path)
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as err:
            raise DecodeError(f"invalid base64 data: {err}", path) from err

    def encode(value: bytes) -> str:
        return base64.b64encode(value).decode("ascii")

    return _Codec(
        decode, encode, lambda v: bytes(v), lambda v: not v, encode_value=encode, falsy_empty=True
    )


def _any_codec() -> _Codec:
    return _Codec(
        lambda v, _p: copy.deepcopy(v),
        copy.deepcopy,
        _ident,
        lambda v: v is None,
        encode_value=copy.deepcopy,
    )


def _optional_codec(inner: _Codec) -> _Codec:
    def decode(value: Any, path: str) -> Any:
        return None if value is None else inner.decode(value, path)

    def encode(value: Any) -> Any:
        return None if value is None else inner.encode(value)

    def normalize(value: Any) -> Any:
        return None if value is None else inner.normalize(value)

    return _Codec(
        decode,
        encode,
        _ident if inner.normalize is _ident else normalize,
        lambda v: v is None,
        encode_value=inner.encode_value,
    )


def _sequence_codec(inner: _Codec) -> _Codec:
    def decode(value: Any, path: str) -> tuple[Any, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise DecodeError(f"expected array, got {_type_name(value)}", path)
        return tuple(inner.decode(item, f"{path}[{i}]") for i, item in enumerate(value))

    def encode(value: Sequence[Any]) -> list[Any]:
        return [inner.encode(item) for item in value]

    def normalize(value: Any) -> tuple[Any, ...]:
        if isinstance(value, str | bytes):
            raise TypeError(f"expected a sequence of items, got {type(value).__name__}")
        return tuple(inner.normalize(item) for item in value)

    def normalize_plain(value: Any) -> tuple[Any, ...]:
        if type(value) is tuple:
            return value
        return normalize(value)

    def normalize_models(value: Any) -> tuple[Any, ...]:
        # Built by the generator, a sequence of models is a tuple of models already.
        if type(value) is tuple and all(isinstance(item, JSONModel) for item in value):
            return value
        return normalize(value)

    plain = inner.encode_value is None and inner.normalize is _ident
    return _Codec(
        decode,
        list if plain else encode,
        normalize_plain
        if inner.normalize is _ident
        else normalize_models
        if inner.keeps_models
        else normalize,
        lambda v: len(v) == 0,
        encode_value=list if plain else encode,
        falsy_empty=True,
    )


def _mapping_codec(inner: _Codec) -> _Codec:
    def decode(value: Any, path: str) -> FrozenDict[str, Any]:
        if value is None:
            return FrozenDict()
        if not isinstance(value, dict):
            raise DecodeError(f"expected object, got {_type_name(value)}", path)
        return FrozenDict(
            {k: inner.decode(v, f"{path}[{json.dumps(k)}]") for k, v in value.items()}
        )

    def encode(value: Mapping[str, Any]) -> dict[str, Any]:
        return {k: inner.encode(v) for k, v in value.items()}

    def encode_plain(value: Mapping[str, Any]) -> dict[str, Any]:
        return dict(value._data) if type(value) is FrozenDict else dict(value)

    def normalize(value: Any) -> FrozenDict[str, Any]:
        if isinstance(value, FrozenDict) and inner.normalize is _ident:
            return value
        return FrozenDict({str(k): inner.normalize(v) for k, v in dict(value).items()})

    plain = inner.encode_value is None and inner.normalize is _ident
    return _Codec(
        decode,
        encode_plain if plain else encode,
        normalize,
        lambda v: len(v) == 0,
        encode_value=encode_plain if plain else encode,
        falsy_empty=True,
    )


def _set_codec() -> _Codec:
    """Go's ``map[string]struct{}``: a set of strings written as an object of empty objects."""

    def decode(value: Any, path: str) -> frozenset[str]:
        if value is None:
            return frozenset()
        if not isinstance(value, dict):
            raise DecodeError(f"expected object, got {_type_name(value)}", path)
        return frozenset(value)

    def encode(value: frozenset[str]) -> dict[str, Any]:
        return {k: {} for k in sorted(value)}

    def normalize(value: Any) -> frozenset[str]:
        if isinstance(value, str):
            raise TypeError("expected a collection of strings, got str")
        return frozenset(value)

    return _Codec(
        decode, encode, normalize, lambda v: len(v) == 0, encode_value=encode, falsy_empty=True
    )


def _model_codec(cls: type[JSONModel]) -> _Codec:
    def decode(value: Any, path: str) -> JSONModel:
        return cls._decode(value, path)

    def encode(value: JSONModel) -> dict[str, Any]:
        return value.to_dict()

    def normalize(value: Any) -> Any:
        if isinstance(value, JSONModel) or not isinstance(value, Mapping):
            return value
        return cls.from_dict(value)

    return _Codec(
        decode, encode, normalize, lambda v: False, encode_value=encode, keeps_models=True
    )


def _codec_for(tp: Any) -> _Codec:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return _any_codec()
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(args) != 2:
            raise TypeError(f"unsupported union {tp!r}")
        return _optional_codec(_codec_for(rest[0]))
    if tp in (str, int, bool, float):
        return _scalar_codec(tp)
    if tp is bytes:
        return _bytes_codec()
    if origin in (tuple,) and len(args) == 2 and args[1] is Ellipsis:
        return _sequence_codec(_codec_for(args[0]))
    if origin in (Sequence, list, typing.Sequence):
        return _sequence_codec(_codec_for(args[0]))
    if origin in (Mapping, dict, typing.Mapping, FrozenDict):
        return _mapping_codec(_codec_for(args[1]))
    if origin is frozenset and args == (str,):
        return _set_codec()
    if isinstance(tp, type) and issubclass(tp, JSONModel):
        return _model_codec(tp)
    if isinstance(tp, type) and issubclass(tp, str):  # str-valued enums
        return _scalar_codec(str)
    raise TypeError(f"unsupported field type {tp!r}")


class _CompiledField:
    __slots__ = ("codec", "default", "json_name", "name", "omitempty", "required")

    def __init__(
        self,
        *,
        name: str,
        json_name: str,
        omitempty: bool,
        required: bool,
        default: Any,
        codec: _Codec,
    ) -> None:
        self.name = name
        self.json_name = json_name
        self.omitempty = omitempty
        self.required = required
        self.default = default
        self.codec = codec


_NO_DEFAULT = object()


@dataclasses.dataclass(frozen=True, kw_only=True)
class JSONModel:
    """Base of the ocispec models: JSON encoding and decoding, unknown keys kept in ``extra``.

    Subclasses are ``@dataclass(frozen=True, kw_only=True)`` and declare fields with
    :func:`jfield`. ``extra`` holds the JSON keys the model does not know, verbatim; it
    takes part in equality but not in hashing.
    """

    __ocispec_fields__: ClassVar[tuple[_CompiledField, ...] | None] = None
    __ocispec_keys__: ClassVar[frozenset[str]] = frozenset()
    #: Per class, from the compiled fields: the fields whose normalization is not the
    #: identity (name, normalizer), and each field's encoding (name, JSON key, whether a
    #: falsy value is omitted, encoder of a value that is not None or None for itself).
    __ocispec_normalize__: ClassVar[tuple[tuple[str, Normalizer], ...]] = ()
    __ocispec_encode__: ClassVar[tuple[tuple[str, str, bool, Encoder | None], ...]] = ()

    extra: Mapping[str, Any] = dataclasses.field(default_factory=FrozenDict, hash=False, repr=False)

    @classmethod
    def _compiled(cls) -> tuple[_CompiledField, ...]:
        compiled = cls.__dict__.get("__ocispec_fields__")
        if compiled is not None:
            return compiled  # type: ignore[no-any-return]
        hints = typing.get_type_hints(cls)
        out: list[_CompiledField] = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get(_META_KEY)
            if meta is None:
                continue
            if f.default is not dataclasses.MISSING:
                default: Any = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory
            else:
                default = _NO_DEFAULT
            out.append(
                _CompiledField(
                    name=f.name,
                    json_name=meta.json_name,
                    omitempty=meta.omitempty,
                    required=default is _NO_DEFAULT,
                    default=default,
                    codec=_codec_for(hints[f.name]),
                )
            )
        result = tuple(out)
        cls.__ocispec_normalize__ = tuple(
            (c.name, c.codec.normalize) for c in result if c.codec.normalize is not _ident
        )
        cls.__ocispec_encode__ = tuple(
            (c.name, c.json_name, c.omitempty and c.codec.falsy_empty, c.codec.encode_value)
            for c in result
        )
        cls.__ocispec_keys__ = frozenset(c.json_name for c in result)
        cls.__ocispec_fields__ = result
        return result

    def __post_init__(self) -> None:
        cls = type(self)
        if cls.__dict__.get("__ocispec_fields__") is None:
            cls._compiled()
        for name, normalize in cls.__ocispec_normalize__:
            value = getattr(self, name)
            try:
                normalized = normalize(value)
            except (TypeError, ValueError) as err:
                raise TypeError(f"{cls.__name__}.{name}: {err}") from err
            if normalized is not value:
                object.__setattr__(self, name, normalized)
        extra = self.extra
        if not isinstance(extra, FrozenDict):
            object.__setattr__(self, "extra", FrozenDict(extra))

    # -- decoding ---------------------------------------------------------------------

    @classmethod
    def _decode(cls, data: Any, path: str) -> Self:
        if not isinstance(data, dict):
            raise DecodeError(f"expected object, got {_type_name(data)}", path)
        kwargs: dict[str, Any] = {}
        for c in cls._compiled():
            if c.json_name in data:
                kwargs[c.name] = c.codec.decode(data[c.json_name], f"{path}.{c.json_name}")
            elif c.required:
                raise DecodeError(f"missing required field {c.json_name!r}", path)
        known = cls.__ocispec_keys__
        kwargs["extra"] = FrozenDict(
            {k: copy.deepcopy(v) for k, v in data.items() if k not in known}
        )
        return cls(**kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build the model from decoded JSON (a ``dict``); raises :class:`DecodeError`."""
        if isinstance(data, Mapping) and not isinstance(data, dict):
            data = dict(data)
        return cls._decode(data, "$")

    @classmethod
    def from_json(cls, data: str | bytes | bytearray) -> Self:
        """Parse a JSON document; raises :class:`DecodeError` on bad JSON or wrong types."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise DecodeError(f"not valid JSON: {err}") from err
        return cls._decode(doc, "$")

    # -- encoding ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (plain dicts and lists) in the field order of the Go types."""
        cls = type(self)
        if cls.__dict__.get("__ocispec_fields__") is None:
            cls._compiled()
        out: dict[str, Any] = {}
        for name, key, omit_falsy, encode in cls.__ocispec_encode__:
            value = getattr(self, name)
            if value is None or (omit_falsy and not value):
                continue
            out[key] = value if encode is None else encode(value)
        if self.extra:
            for key, value in self.extra.items():
                if key not in out:
                    out[key] = copy.deepcopy(value)
        return out

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialize as JSON text: compact by default, like Go's encoding/json."""
        separators = (",", ":") if indent is None else (",", ": ")
        return json.dumps(self.to_dict(), indent=indent, separators=separators, ensure_ascii=False)

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON, ready to be written or digested."""
        return self.to_json().encode("utf-8")

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)
