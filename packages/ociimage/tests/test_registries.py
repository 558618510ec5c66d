"""ociimage.registries: registries.conf v2 parsing, mirrors, short names, drop-ins."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from ociimage.errors import BlockedRegistryError, ConfigFileError, ShortNameError
from ociimage.reference import parse_reference
from ociimage.registries import (
    PullFromMirror,
    RegistriesConfig,
    ShortNameMode,
    load_registries_conf,
)

DIGEST = "sha256:" + hashlib.sha256(b"m").hexdigest()

EXAMPLE = textwrap.dedent(
    """
    unqualified-search-registries = ["example.com"]

    [[registry]]
    prefix = "example.com/foo"
    insecure = false
    blocked = false
    location = "internal-registry-for-example.com/bar"

    [[registry.mirror]]
    location = "example-mirror-0.local/mirror-for-foo"

    [[registry.mirror]]
    location = "example-mirror-1.local/mirrors/foo"
    insecure = true
    """
)


def _sources(config: RegistriesConfig, ref: str) -> list[tuple[str, bool, bool]]:
    return [
        (str(s.reference), s.insecure, s.mirror) for s in config.pull_sources(parse_reference(ref))
    ]


def test_documented_example_mirrors_then_location() -> None:
    config = RegistriesConfig.parse(EXAMPLE)
    assert _sources(config, "example.com/foo/image:latest") == [
        ("example-mirror-0.local/mirror-for-foo/image:latest", False, True),
        ("example-mirror-1.local/mirrors/foo/image:latest", True, True),
        ("internal-registry-for-example.com/bar/image:latest", False, False),
    ]
    # outside the prefix: pulled from where it says
    assert _sources(config, "example.com/other:1") == [("example.com/other:1", False, False)]
    # "example.com/foobar" does not match the prefix "example.com/foo"
    assert _sources(config, "example.com/foobar") == [("example.com/foobar", False, False)]


def test_longest_prefix_wins_and_wildcards() -> None:
    config = RegistriesConfig.parse(
        textwrap.dedent(
            """
            [[registry]]
            location = "quay.io"
            insecure = true

            [[registry]]
            prefix = "quay.io/ns"
            location = "mirror.local/ns"

            [[registry]]
            prefix = "*.example.com"
            blocked = true

            [[registry]]
            prefix = "ok.example.com"
            """
        )
    )
    assert _sources(config, "quay.io/ns/app:1") == [("mirror.local/ns/app:1", False, False)]
    assert _sources(config, "quay.io/other/app:1") == [("quay.io/other/app:1", True, False)]
    assert config.is_insecure("quay.io")
    assert not config.is_insecure("mirror.local")
    with pytest.raises(BlockedRegistryError, match=r"\*\.example\.com"):
        config.pull_sources(parse_reference("a.b.example.com/app"))
    assert _sources(config, "ok.example.com/app") == [("ok.example.com/app", False, False)]
    # the bare domain is not matched by the wildcard
    assert _sources(config, "example.com/app") == [("example.com/app", False, False)]


@pytest.mark.parametrize(
    ("mode", "by_tag", "by_digest"),
    [("all", True, True), ("digest-only", False, True), ("tag-only", True, False)],
)
def test_pull_from_mirror(mode: str, by_tag: bool, by_digest: bool) -> None:
    config = RegistriesConfig.parse(
        textwrap.dedent(
            f"""
            [[registry]]
            location = "primary.io"
            [[registry.mirror]]
            location = "mirror.io"
            pull-from-mirror = "{mode}"
            """
        )
    )
    assert config.registries[0].mirrors[0].pull_from_mirror == PullFromMirror(mode)
    tagged = _sources(config, "primary.io/app:1")
    pinned = _sources(config, f"primary.io/app@{DIGEST}")
    assert (len(tagged) == 2) is by_tag
    assert (len(pinned) == 2) is by_digest
    assert tagged[-1][0] == "primary.io/app:1"
    if by_digest:
        assert pinned[0][0] == f"mirror.io/app@{DIGEST}"


def test_mirror_by_digest_only() -> None:
    config = RegistriesConfig.parse(
        '[[registry]]\nlocation = "p.io"\nmirror-by-digest-only = true\n'
        '[[registry.mirror]]\nlocation = "m.io"\n'
    )
    assert len(_sources(config, "p.io/a:1")) == 1
    assert _sources(config, f"p.io/a@{DIGEST}")[0][0] == f"m.io/a@{DIGEST}"
    with pytest.raises(ConfigFileError, match="one or the other"):
        RegistriesConfig.parse(
            '[[registry]]\nlocation = "p.io"\nmirror-by-digest-only = true\n'
            '[[registry.mirror]]\nlocation = "m.io"\npull-from-mirror = "all"\n'
        )


def test_docker_hub_library_prefix() -> None:
    config = RegistriesConfig.parse(
        '[[registry]]\nprefix = "docker.io/library"\nlocation = "hub-mirror.local/library"\n'
    )
    assert _sources(config, "busybox") == [("hub-mirror.local/library/busybox", False, False)]


def test_short_names_aliases_and_modes() -> None:
    text = textwrap.dedent(
        """
        unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]
        short-name-mode = "{mode}"
        [aliases]
        "fedora" = "registry.fedoraproject.org/fedora"
        """
    )
    enforcing = RegistriesConfig.parse(text.format(mode="enforcing"))
    resolved = enforcing.resolve("fedora:39")
    assert [str(c) for c in resolved.candidates] == ["registry.fedoraproject.org/fedora:39"]
    assert resolved.alias == "registry.fedoraproject.org/fedora"
    with pytest.raises(ShortNameError, match="ambiguous"):
        enforcing.resolve("busybox")
    for mode in ("permissive", "disabled"):
        config = RegistriesConfig.parse(text.format(mode=mode))
        assert config.short_name_mode == ShortNameMode(mode)
        assert [str(c) for c in config.resolve("busybox:1").candidates] == [
            "registry.fedoraproject.org/busybox:1",
            "docker.io/library/busybox:1",
        ]
    # qualified names are never searched
    assert [str(c) for c in enforcing.resolve("quay.io/a/b").candidates] == ["quay.io/a/b"]
    # one search registry: no ambiguity even when enforcing
    single = RegistriesConfig.parse(
        'unqualified-search-registries = ["quay.io"]\nshort-name-mode = "enforcing"\n'
    )
    assert [str(c) for c in single.resolve(f"app@{DIGEST}").candidates] == [f"quay.io/app@{DIGEST}"]
    with pytest.raises(ShortNameError, match="no unqualified-search-registries"):
        RegistriesConfig().resolve("busybox")
    assert RegistriesConfig().short_name_mode == ShortNameMode.PERMISSIVE


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("unqualified-search-registries = 'x'", "array of strings"),
        ("unqualified-search-registries = ['a.io/ns']", "not a host"),
        ("short-name-mode = 'sometimes'", "short-name-mode"),
        ("[[registry]]\ninsecure = true", "prefix or a location"),
        ("[[registry]]\nlocation = 'a.io'\ninsecure = 'yes'", "true or false"),
        ("[[registry]]\nlocation = 'a.io'\nfrobnicate = 1", "unknown keys"),
        ("[[registry]]\nprefix = '*.a.io'\nlocation = 'b.io'", "cannot have a location"),
        ("[[registry]]\nprefix = '*.a.io/ns'", "wildcard"),
        ("[[registry]]\nlocation = 'a.io'\n[[registry]]\nlocation = 'a.io'", "twice"),
        ("[[registry]]\nlocation = 'A_.io/x'", "not a valid location"),
        (
            "[[registry]]\nlocation = 'a.io'\n[[registry.mirror]]\nlocation = 'm'\n"
            "pull-from-mirror = 'x'",
            "pull-from-mirror",
        ),
        ("[aliases]\n'quay.io/x' = 'quay.io/x'", "short name"),
        ("[aliases]\nx = 'x'", "fully qualified"),
        ("[aliases]\nx = 'quay.io/x:1'", "fully qualified"),
        ("nonsense = 1", "unknown top-level"),
        ("this is not toml", "TOML"),
    ],
)
def test_invalid_files_say_why(text: str, why: str) -> None:
    with pytest.raises(ConfigFileError, match=why):
        RegistriesConfig.parse(text, "/etc/containers/registries.conf")


def test_v1_format() -> None:
    config = RegistriesConfig.parse(
        textwrap.dedent(
            """
            [registries.search]
            registries = ['registry1.com', 'registry2.com']
            [registries.insecure]
            registries = ['registry3.com']
            [registries.block]
            registries = ['registry.untrusted.com']
            """
        )
    )
    assert config.unqualified_search_registries == ("registry1.com", "registry2.com")
    assert config.is_insecure("registry3.com")
    with pytest.raises(BlockedRegistryError):
        config.pull_sources(parse_reference("registry.untrusted.com/x"))


def test_dropins_override_in_order(tmp_path: Path) -> None:
    main = tmp_path / "registries.conf"
    main.write_text(
        textwrap.dedent(
            """
            unqualified-search-registries = ["a.io", "b.io"]
            short-name-mode = "enforcing"
            [[registry]]
            location = "a.io"
            insecure = true
            [[registry]]
            location = "keep.io"
            [aliases]
            old = "a.io/old"
            gone = "a.io/gone"
            """
        )
    )
    dropins = tmp_path / "registries.conf.d"
    dropins.mkdir()
    (dropins / "10-first.conf").write_text(
        '[[registry]]\nlocation = "a.io"\nblocked = true\n[aliases]\ngone = ""\nnew = "c.io/new"\n'
    )
    (dropins / "20-second.conf").write_text(
        'unqualified-search-registries = ["c.io"]\nshort-name-mode = "disabled"\n'
    )
    (dropins / "ignored.txt").write_text("not toml at all [[[")
    config = load_registries_conf(main)
    assert config.unqualified_search_registries == ("c.io",)
    assert config.short_name_mode == ShortNameMode.DISABLED
    assert dict(config.aliases) == {"old": "a.io/old", "new": "c.io/new"}
    by_prefix = {r.prefix: r for r in config.registries}
    assert by_prefix["a.io"].blocked and not by_prefix["a.io"].insecure
    assert "keep.io" in by_prefix
    # a missing main file is not an error; a broken drop-in names itself
    assert load_registries_conf(tmp_path / "absent.conf") == RegistriesConfig()
    (dropins / "30-bad.conf").write_text("short-name-mode = 'x'")
    with pytest.raises(ConfigFileError, match=r"30-bad\.conf"):
        load_registries_conf(main)


def test_with_insecure() -> None:
    config = RegistriesConfig.parse(EXAMPLE).with_insecure(["127.0.0.1:5000", "example.com/foo"])
    assert config.is_insecure("127.0.0.1:5000")
    src = config.pull_sources(parse_reference("example.com/foo/x"))
    assert src[-1].insecure
