"""One broken JSON-schema rule (:class:`SchemaViolation`), apart from :mod:`ocispec.errors`
so that a program that never validates (``ociimage pull``) does not build it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SchemaViolation"]


@dataclass(frozen=True, kw_only=True)
class SchemaViolation:
    """One rule of a JSON schema that a document breaks.

    ``path`` is the JSON path of the offending value (``$.linux.resources.pids``),
    ``rule`` the schema keyword that failed (``required``, ``type``, ``pattern``...),
    ``schema_path`` where the rule sits in the schema, ``message`` jsonschema's text.
    """

    path: str
    rule: str
    schema_path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (rule {self.rule!r} at {self.schema_path})"
