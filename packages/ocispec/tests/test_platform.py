"""Platform parsing, normalization and matching."""

from __future__ import annotations

import pytest
from ocispec import PlatformError
from ocispec.image import Platform, PlatformMatcher, host_platform


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("Linux/AMD64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/arm/6", "linux/arm/v6"),
        ("linux/i386", "linux/386"),
        ("arm64", "linux/arm64"),
        ("macos/arm64", "darwin/arm64"),
        ("windows/amd64", "windows/amd64"),
    ],
)
def test_parse_and_normalize(spec: str, expected: str) -> None:
    assert str(Platform.parse(spec)) == expected


@pytest.mark.parametrize("bad", ["", "/", "linux//amd64", "a/b/c/d"])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(PlatformError):
        Platform.parse(bad)


def test_host_platform_is_normalized() -> None:
    host = host_platform()
    assert host == host.normalized()
    assert host.os == "linux"
    assert PlatformMatcher(host).match(host)


def P(arch: str, variant: str = "", os: str = "linux", **kw: object) -> Platform:  # noqa: N802
    return Platform(os=os, architecture=arch, variant=variant, **kw)  # type: ignore[arg-type]


def test_compatibility_rules() -> None:
    amd64 = PlatformMatcher("linux/amd64")
    assert amd64.match(P("amd64")) and amd64.match(P("x86_64")) and amd64.match(P("386"))
    assert not amd64.match(P("arm64")) and not amd64.match(P("amd64", os="windows"))
    assert not amd64.match(P("amd64", "v2"))  # a v1 host cannot run v2 binaries
    v3 = PlatformMatcher("linux/amd64/v3")
    assert v3.match(P("amd64", "v2")) and v3.less(P("amd64", "v3"), P("amd64", "v2"))
    arm64 = PlatformMatcher("linux/arm64")
    assert arm64.match(P("arm64", "v8")) and arm64.match(P("aarch64"))
    assert arm64.match(P("arm", "v7")) and arm64.less(P("arm64"), P("arm", "v7"))
    arm7 = PlatformMatcher("linux/arm/v7")
    assert arm7.match(P("arm", "v6")) and arm7.match(P("arm")) and not arm7.match(P("arm", "v8"))
    strict = PlatformMatcher("linux/arm/v7", strict=True)
    assert strict.match(P("arm", "v7")) and not strict.match(P("arm", "v6"))


def test_os_version_and_features() -> None:
    win = PlatformMatcher(P("amd64", os="windows", os_version="10.0.17763.4010"))
    assert win.match(P("amd64", os="windows", os_version="10.0.17763.1"))
    assert not win.match(P("amd64", os="windows", os_version="10.0.20348.1"))
    assert win.match(P("amd64", os="windows"))
    exact = P("amd64", os="windows", os_version="10.0.17763.4010")
    assert win.less(exact, P("amd64", os="windows"))
    host = PlatformMatcher(P("amd64", os_features=["f1"]))
    assert host.match(P("amd64")) and host.match(P("amd64", os_features=["f1"]))
    assert not host.match(P("amd64", os_features=["f2"]))


def test_select_orders_best_first() -> None:
    items = [P("arm", "v5"), P("arm64"), P("arm", "v7"), P("amd64")]
    assert PlatformMatcher("linux/arm64").select(items) == [items[1], items[2], items[0]]
    assert not PlatformMatcher("linux/amd64").less(P("arm64"), P("amd64"))
