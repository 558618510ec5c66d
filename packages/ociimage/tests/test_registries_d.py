"""ociimage.registries_d: signature storage configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from ociimage.errors import ConfigFileError
from ociimage.reference import parse_reference
from ociimage.registries_d import RegistriesD, SignatureStorage, load_registries_d

DIGEST = "sha256:" + "b" * 64


def test_most_specific_scope_and_urls(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "default-docker:\n  lookaside: file:///var/lib/sigs\n"
        "docker:\n"
        "  r.example.com:\n    lookaside: https://sigs.example.com/base/\n"
        "  r.example.com/ns/app:\n    sigstore: https://app-sigs.example.com\n"
        "    use-sigstore-attachments: true\n"
    )
    (tmp_path / "b.yaml").write_text(
        "docker:\n  '*.corp.example':\n    use-sigstore-attachments: true\n"
    )
    (tmp_path / "ignored.txt").write_text("not: [yaml")
    conf = load_registries_d(tmp_path)
    app = conf.for_reference(parse_reference("r.example.com/ns/app:1"))
    assert app == SignatureStorage(
        lookaside="https://app-sigs.example.com", use_sigstore_attachments=True
    )
    other = conf.for_reference(parse_reference("r.example.com/ns/other"))
    assert other.lookaside == "https://sigs.example.com/base/"
    assert other.lookaside_url(parse_reference("r.example.com/ns/other"), DIGEST, 2) == (
        f"https://sigs.example.com/base/ns/other@sha256={'b' * 64}/signature-2"
    )
    assert conf.for_reference(parse_reference("x.corp.example/a")).use_sigstore_attachments
    fallback = conf.for_reference(parse_reference("quay.io/a"))
    assert fallback == SignatureStorage(lookaside="file:///var/lib/sigs")
    assert load_registries_d(tmp_path / "missing") == RegistriesD()


@pytest.mark.parametrize(
    ("docs", "why"),
    [
        ({"a.yaml": "x: ["}, "not valid YAML"),
        ({"a.yaml": "- 1"}, "mapping"),
        ({"a.yaml": "nope: 1"}, "unknown keys"),
        ({"a.yaml": "docker:\n  a.io:\n    lookaside: ftp://x\n"}, "file://"),
        (
            {"a.yaml": "docker:\n  a.io:\n    use-sigstore-attachments: yes please\n"},
            "true or false",
        ),
        ({"a.yaml": "docker:\n  a.io:\n    colour: red\n"}, "unknown keys"),
        ({"a.yaml": "docker:\n  a.io: {}\n", "b.yaml": "docker:\n  a.io: {}\n"}, "more than once"),
        ({"a.yaml": "default-docker: {}\n", "b.yaml": "default-docker: {}\n"}, "more than one"),
    ],
)
def test_invalid(docs: dict[str, str], why: str) -> None:
    with pytest.raises(ConfigFileError, match=why):
        RegistriesD.parse(docs)
