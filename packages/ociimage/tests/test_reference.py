"""ociimage.reference: grammar, normalisation, familiar names."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ociimage.errors import InvalidReferenceError
from ociimage.reference import Reference, is_qualified, parse_reference, split_reference

SHA = "sha256:" + hashlib.sha256(b"x").hexdigest()
SHA512 = "sha512:" + hashlib.sha512(b"x").hexdigest()


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "", ""),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", ""),
        ("me/app", "docker.io", "me/app", "", ""),
        ("docker.io/busybox", "docker.io", "library/busybox", "", ""),
        ("index.docker.io/me/app:v1", "docker.io", "me/app", "v1", ""),
        ("localhost/app", "localhost", "app", "", ""),
        ("localhost:5000/a/b/c:t", "localhost:5000", "a/b/c", "t", ""),
        (
            "127.0.0.1:5000/crid-test/busybox:latest",
            "127.0.0.1:5000",
            "crid-test/busybox",
            "latest",
            "",
        ),
        ("[::1]:5000/app", "[::1]:5000", "app", "", ""),
        ("[fe80::1]/app:x", "[fe80::1]", "app", "x", ""),
        ("quay.io/a/b@" + SHA, "quay.io", "a/b", "", SHA),
        ("quay.io/a/b:tag@" + SHA512, "quay.io", "a/b", "tag", SHA512),
        ("registry.example.com/a__b/c-d/e.f_g", "registry.example.com", "a__b/c-d/e.f_g", "", ""),
        ("a---b", "docker.io", "library/a---b", "", ""),
    ],
)
def test_parse_valid(text: str, domain: str, path: str, tag: str, digest: str) -> None:
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("quay.io/Me/app", "lowercase"),
        ("app:", "invalid tag"),
        ("app:-x", "invalid tag"),
        ("app:" + "a" * 129, "invalid tag"),
        ("app@sha256:abc", "invalid digest"),
        ("app@sha256:" + "A" * 64, "invalid digest"),
        ("app@md5:" + "a" * 31, "invalid digest"),
        ("a//b", "invalid repository name"),
        ("a/b/", "invalid repository name"),
        ("-a", "invalid repository name"),
        ("a_-b", "invalid repository name"),
        ("quay.io/", "no repository name"),
        ("bad_host.io:5000/app", "invalid registry host"),
        ("[::1/app", "invalid registry host"),
        (" app", "whitespace"),
        ("a" * 64, "image ID"),
        ("example.com/" + "a" * 250, "longer than 255"),
    ],
)
def test_parse_invalid_says_why(text: str, why: str) -> None:
    with pytest.raises(InvalidReferenceError, match=why):
        parse_reference(text)


def test_invalid_reference_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_reference("UPPER")


def test_familiar_names() -> None:
    assert parse_reference("docker.io/library/busybox:latest").familiar() == "busybox:latest"
    assert parse_reference("docker.io/me/app").familiar() == "me/app"
    assert parse_reference("docker.io/library/a/b").familiar() == "library/a/b"
    assert parse_reference("quay.io/a/b@" + SHA).familiar() == "quay.io/a/b@" + SHA


def test_defaults_and_derived_forms() -> None:
    ref = parse_reference("quay.io/a/b")
    assert ref.tag_or_latest == "latest"
    assert ref.manifest_reference == "latest"
    assert str(ref.with_default_tag()) == "quay.io/a/b:latest"
    pinned = ref.with_tag("v1").with_digest(SHA)
    assert str(pinned) == f"quay.io/a/b:v1@{SHA}"
    assert pinned.manifest_reference == SHA
    assert pinned.tag_or_latest == "v1"
    assert ref.repo_digest(SHA) == f"quay.io/a/b@{SHA}"
    with pytest.raises(InvalidReferenceError):
        ref.with_tag("no/slash")
    with pytest.raises(InvalidReferenceError):
        ref.with_digest("sha256:short")


def test_qualified_and_split() -> None:
    assert not is_qualified("busybox")
    assert not is_qualified("me/app:1")
    assert is_qualified("localhost/app")
    assert is_qualified("example.com/app")
    assert split_reference("me/app:1") == ("", "me/app", "1", "")


# -- properties ------------------------------------------------------------------------

_alnum = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_sep = st.sampled_from([".", "_", "__", "-", "--"])


@st.composite
def path_components(draw: st.DrawFn) -> str:
    parts = [draw(_alnum)]
    for _ in range(draw(st.integers(0, 2))):
        parts += [draw(_sep), draw(_alnum)]
    return "".join(parts)


_domain_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
domains = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", _domain_label, _domain_label),
    st.just("localhost"),
    st.builds(lambda p: f"localhost:{p}", st.integers(1, 65535)),
    st.builds(lambda a, p: f"{a}.io:{p}", _domain_label, st.integers(1, 65535)),
    st.builds(lambda p: f"[::1]:{p}", st.integers(1, 65535)),
)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
digests = st.binary(max_size=16).map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest())


@given(
    domain=domains,
    path=st.lists(path_components(), min_size=1, max_size=4).map("/".join),
    tag=st.one_of(st.just(""), tags),
    digest=st.one_of(st.just(""), digests),
)
def test_qualified_references_round_trip(domain: str, path: str, tag: str, digest: str) -> None:
    text = str(Reference(domain=domain, path=path, tag=tag, digest=digest))
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == text
    assert parse_reference(str(ref)) == ref


@given(
    path=st.lists(path_components(), min_size=1, max_size=3).map("/".join),
    tag=st.one_of(st.just(""), tags),
)
def test_short_names_normalise_into_docker_hub(path: str, tag: str) -> None:
    text = f"{path}:{tag}" if tag else path
    first = path.split("/", 1)[0]
    if "." in first and "/" in path:
        return  # the first component is a host, not a short name
    ref = parse_reference(text)
    assert ref.domain == "docker.io"
    assert ref.path == (path if "/" in path else f"library/{path}")
    assert ref.familiar() == text or ref.familiar() == text.removeprefix("library/")
    # normalising twice changes nothing
    assert parse_reference(str(ref)) == ref


@given(st.text(max_size=40))
def test_arbitrary_text_either_parses_or_raises_invalid_reference(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReferenceError as err:
        assert str(err)
    else:
        assert parse_reference(str(ref)) == ref
