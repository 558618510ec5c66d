"""Schema validation: errors name the JSON path and the rule; schemas load from a zipped package."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import ocispec
import pytest
from ocispec import (
    DecodeError,
    Schema,
    SchemaValidationError,
    validate,
    validate_media_type,
    violations,
)
from ocispec.image import MediaType
from ocispec.schema import schema_for_media_type


def test_violation_names_path_and_rule() -> None:
    doc = {
        "ociVersion": "1.3.0",
        "process": {"cwd": "/", "rlimits": [{"type": "nofile", "soft": 1, "hard": 1}]},
        "linux": {"namespaces": [{"type": "bogus"}], "resources": {"pids": {}}},
    }
    with pytest.raises(SchemaValidationError) as info:
        validate(doc, Schema.RUNTIME_CONFIG)
    found = {(v.path, v.rule) for v in info.value.violations}
    assert ("$.process.rlimits[0].type", "pattern") in found
    assert ("$.linux.resources.pids", "required") in found
    assert any(p.startswith("$.linux.namespaces[0]") for p, _ in found)
    assert "$.linux.resources.pids" in str(info.value)


def test_valid_documents_pass() -> None:
    validate({"ociVersion": "1.3.0", "root": {"path": "rootfs"}}, Schema.RUNTIME_CONFIG)
    validate(
        '{"ociVersion":"1.3.0","id":"x","status":"running","bundle":"/b","pid":3}',
        Schema.RUNTIME_STATE,
    )
    validate({"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0"}, "runtime/features-schema.json")


def test_non_linux_sections_only_need_to_be_objects() -> None:
    assert (
        violations({"ociVersion": "1", "windows": {"layerFolders": []}}, Schema.RUNTIME_CONFIG)
        == []
    )
    assert violations({"ociVersion": "1", "solaris": 3}, Schema.RUNTIME_CONFIG)[0].rule == "type"


def test_formats_are_checked() -> None:
    base = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    assert violations({**base, "created": "2024-02-30T10:00:00.5+01:00"}, Schema.IMAGE_CONFIG) == []
    assert violations({**base, "created": "now"}, Schema.IMAGE_CONFIG)[0].rule == "format"
    desc = {"mediaType": "a/b", "size": 1, "digest": "sha256:ab", "urls": ["not a uri"]}
    assert [v.path for v in violations(desc, Schema.DESCRIPTOR)] == ["$.urls[0]"]


def test_media_type_dispatch() -> None:
    assert schema_for_media_type(MediaType.DOCKER_MANIFEST) is Schema.IMAGE_MANIFEST
    assert schema_for_media_type(MediaType.IMAGE_INDEX + "; charset=utf-8") is Schema.IMAGE_INDEX
    with pytest.raises(ValueError, match="no schema"):
        schema_for_media_type("text/plain")
    with pytest.raises(SchemaValidationError, match="layers"):
        validate_media_type(
            {
                "schemaVersion": 2,
                "config": {"mediaType": "a/b", "size": 1, "digest": "sha256:ab"},
                "layers": [],
            },
            MediaType.IMAGE_MANIFEST,
        )


def test_bad_json_text() -> None:
    with pytest.raises(DecodeError):
        validate("{nope", Schema.IMAGE_INDEX)


def test_schemas_load_from_a_zipped_package(tmp_path: Path) -> None:
    """importlib.resources, not __file__ paths: the package works zipped (as from a wheel)."""
    src = Path(ocispec.__file__).parent
    archive = tmp_path / "ocispec.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in src.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, Path("ocispec") / path.relative_to(src))
    code = (
        "import ocispec, sys;"
        "assert ocispec.__file__.startswith(sys.argv[1]), ocispec.__file__;"
        "from ocispec import violations, Schema;"
        "print(len(violations({'ociVersion': 1}, Schema.RUNTIME_CONFIG)))"
    )
    site = sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": f"{archive}:{site}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, str(archive)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
