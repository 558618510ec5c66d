"""Validation of OCI documents against the official JSON schemas shipped with this package.

The schemas are runtime-spec v1.3.0 and image-spec v1.1.1 (Apache-2.0, see the LICENSE
files beside them in ``ocispec/schemas/``). They are draft-04 schemas that refer to one
another by file name; they are loaded with :mod:`importlib.resources`, so validation
works from an installed wheel.

The runtime config schema refers to the Solaris, Windows, VM, z/OS and FreeBSD sections
in files the runtime-spec ships separately and this package does not: those sections are
only checked to be objects.

Formats are checked too: ``date-time`` (RFC 3339) and ``uri``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ocispec._model import JSONModel
from ocispec.errors import DecodeError, SchemaValidationError, SchemaViolation
from ocispec.image.mediatype import MediaType, _base

if TYPE_CHECKING:
    import referencing

# jsonschema and referencing (with attrs, ~10 MiB and ~100 ms) are imported at the first
# validation, not with ocispec: a daemon that only reads models never needs them.

__all__ = [
    "Schema",
    "schema_for_media_type",
    "validate",
    "validate_media_type",
    "violations",
]


class Schema(StrEnum):
    """The schemas documents can be validated against (value: the file in ``ocispec/schemas``)."""

    RUNTIME_CONFIG = "runtime/config-schema.json"
    RUNTIME_STATE = "runtime/state-schema.json"
    RUNTIME_FEATURES = "runtime/features-schema.json"
    IMAGE_MANIFEST = "image/image-manifest-schema.json"
    IMAGE_INDEX = "image/image-index-schema.json"
    IMAGE_CONFIG = "image/config-schema.json"
    DESCRIPTOR = "image/content-descriptor.json"
    IMAGE_LAYOUT = "image/image-layout-schema.json"


_BY_MEDIA_TYPE: dict[str, Schema] = {
    MediaType.IMAGE_MANIFEST: Schema.IMAGE_MANIFEST,
    MediaType.DOCKER_MANIFEST: Schema.IMAGE_MANIFEST,
    MediaType.IMAGE_INDEX: Schema.IMAGE_INDEX,
    MediaType.DOCKER_MANIFEST_LIST: Schema.IMAGE_INDEX,
    MediaType.IMAGE_CONFIG: Schema.IMAGE_CONFIG,
    MediaType.DOCKER_CONFIG: Schema.IMAGE_CONFIG,
    MediaType.DESCRIPTOR: Schema.DESCRIPTOR,
    MediaType.LAYOUT_HEADER: Schema.IMAGE_LAYOUT,
}

_NOT_SHIPPED = re.compile(r"^config-(solaris|windows|vm|zos|freebsd)\.json$")


def schema_for_media_type(media_type: str) -> Schema:
    """The schema for a document of ``media_type`` (OCI or Docker).

    Raises :class:`ValueError` when there is none.
    """
    try:
        return _BY_MEDIA_TYPE[_base(media_type)]
    except KeyError:
        raise ValueError(f"no schema for media type {media_type!r}") from None


def _load(family: str, name: str) -> Any:
    from importlib import resources  # at first use: it costs 10 ms to import

    text = resources.files("ocispec").joinpath("schemas", family, name).read_text("utf-8")
    return json.loads(text)


def _contents(family: str, name: str) -> Any:
    """A schema file, or a placeholder for the platforms whose schemas are not shipped."""
    platform = _NOT_SHIPPED.match(name)
    if platform:
        return {platform.group(1): {"type": "object"}}
    return _load(family, name)


def _refs(node: Any) -> list[str]:
    """Every ``$ref`` in a schema document."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            found += _refs(value)
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


@cache
def _registry(family: str) -> referencing.Registry[Any]:
    """Every schema of ``family`` under every URI it is referred to by, crawled once.

    A referencing.Registry is immutable: one that retrieves lazily would read, parse and
    crawl the referenced files again at each validation (~45 ms for a runtime config).
    """
    import referencing
    from referencing.jsonschema import DRAFT4

    found: dict[str, referencing.Resource[Any]] = {}
    todo: list[tuple[str, Any]] = []
    for entry in _schema_files(family):
        contents = _load(family, entry)
        todo.append((contents.get("id") or contents.get("$id") or entry, contents))
    while todo:
        uri, contents = todo.pop()
        if uri in found:
            continue
        found[uri] = referencing.Resource.from_contents(contents, default_specification=DRAFT4)
        base = contents.get("id") or contents.get("$id") or uri
        for ref in _refs(contents):
            target = urljoin(base, ref.split("#", 1)[0])
            if target and target not in found:
                name = target.rstrip("/").rsplit("/", 1)[-1]
                try:
                    todo.append((target, _contents(family, name)))
                except (FileNotFoundError, ValueError):
                    continue
    return referencing.Registry().with_resources(found.items()).crawl()


def _schema_files(family: str) -> list[str]:
    """The schema file names shipped for ``family``."""
    from importlib import resources

    folder = resources.files("ocispec").joinpath("schemas", family)
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def _format_checker() -> Any:
    import jsonschema  # type: ignore[import-untyped]

    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time")  # type: ignore[untyped-decorator]
    def _date_time(value: object) -> bool:
        return not isinstance(value, str) or bool(_RFC3339.match(value))

    @checker.checks("uri")  # type: ignore[untyped-decorator]
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme) and not any(c.isspace() for c in value)

    return checker


@cache
def _validator(schema: Schema) -> Any:
    import jsonschema

    family, name = schema.value.split("/", 1)
    contents = _load(family, name)
    cls = jsonschema.Draft4Validator
    return cls(contents, registry=_registry(family), format_checker=_format_checker())


def _as_document(document: object) -> Any:
    if isinstance(document, JSONModel):
        return document.to_dict()
    if isinstance(document, str | bytes | bytearray):
        try:
            return json.loads(document)
        except ValueError as err:
            raise DecodeError(f"not valid JSON: {err}") from err
    if isinstance(document, Mapping):
        return dict(document)
    return document


def _violation(error: Any) -> SchemaViolation:
    import jsonschema.exceptions  # type: ignore[import-untyped]

    best = jsonschema.exceptions.best_match([error])
    schema_path = "/".join(str(p) for p in best.absolute_schema_path)
    return SchemaViolation(
        path=best.json_path,
        rule=str(best.validator),
        schema_path=schema_path or "/",
        message=best.message,
    )


def violations(document: object, schema: Schema | str) -> list[SchemaViolation]:
    """Every schema rule ``document`` breaks (empty when valid), sorted by JSON path.

    ``document`` is a model, a decoded JSON value, or JSON text.
    """
    validator = _validator(Schema(schema))
    doc = _as_document(document)
    found = [_violation(e) for e in validator.iter_errors(doc)]
    return sorted(found, key=lambda v: (v.path, v.rule, v.schema_path))


def validate(document: object, schema: Schema | str) -> None:
    """Raise :class:`SchemaValidationError` naming every broken rule if ``document`` is invalid."""
    found = violations(document, schema)
    if found:
        raise SchemaValidationError(Schema(schema).name.lower(), found)


def validate_media_type(document: object, media_type: str) -> None:
    """Validate an image document against the schema its media type calls for."""
    validate(document, schema_for_media_type(media_type))
