"""Image names, users and pins: the pure parts of crid.images."""

from __future__ import annotations

import pytest

from crid.images import PinRule, candidate_names, image_user
from ociimage import RegistriesConfig
from ocistore import Image


def image(*names: str, digests: tuple[str, ...] = ()) -> Image:
    return Image(
        id="sha256:" + "1" * 64,
        names=names,
        repo_digests=digests,
        manifest_digest="sha256:" + "2" * 64,
        manifest_media_type="application/vnd.oci.image.manifest.v1+json",
        index_digest=None,
        layers=(),
        size=1,
        created="",
        added=0.0,
    )


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", (0, "")),
        ("0", (0, "")),
        ("1000", (1000, "")),
        ("1000:1000", (1000, "")),
        ("app", (None, "app")),
        ("app:staff", (None, "app")),
        (":1000", (0, "")),
    ],
)
def test_image_user(user: str, expected: tuple[int | None, str]) -> None:
    assert image_user(user) == expected


def test_candidate_names_normalise_qualified_names() -> None:
    conf = RegistriesConfig()
    assert candidate_names("docker.io/busybox", conf) == ["docker.io/library/busybox:latest"]
    digest = "sha256:" + "a" * 64
    assert candidate_names(f"quay.io/x/y:1@{digest}", conf) == [
        f"quay.io/x/y:1@{digest}",
        f"quay.io/x/y@{digest}",
    ]
    assert candidate_names("Not A Name", conf) == []


def test_candidate_names_of_short_names_follow_registries_conf() -> None:
    assert candidate_names("busybox", RegistriesConfig()) == []  # nowhere to search
    conf = RegistriesConfig.parse(
        'unqualified-search-registries = ["quay.io", "docker.io"]\n'
        'short-name-mode = "enforcing"\n'
        '[aliases]\n"app" = "registry.example/team/app"\n'
    )
    # enforcing refuses to pull an ambiguous short name, but local lookups try all
    assert candidate_names("busybox:1", conf) == [
        "quay.io/busybox:1",
        "docker.io/library/busybox:1",
    ]
    assert candidate_names("app", conf) == ["registry.example/team/app:latest"]


def test_pin_rule_pause_image_exact_names_and_globs() -> None:
    rule = PinRule.from_config(
        "registry.k8s.io/pause:3.10", ["busybox", "quay.io/infra/*", "*@sha256:" + "9" * 64]
    )
    assert rule.matches(image("registry.k8s.io/pause:3.10"))
    assert not rule.matches(image("registry.k8s.io/pause:3.9"))
    assert rule.matches(image("docker.io/library/busybox:latest"))
    assert rule.matches(image("quay.io/infra/agent:2"))
    assert not rule.matches(image("quay.io/other/agent:2"))
    assert rule.matches(image(digests=("quay.io/x/y@sha256:" + "9" * 64,)))
    assert not rule.matches(image("docker.io/library/alpine:latest"))
    assert not PinRule.from_config("", []).matches(image("registry.k8s.io/pause:3.10"))
