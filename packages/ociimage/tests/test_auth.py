"""ociimage.auth: auth.json / config.json lookup and CRI credentials."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ociimage.auth import AuthFile, Credentials, CredentialStore, default_auth_files
from ociimage.errors import ConfigFileError


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_most_specific_key_wins() -> None:
    auth = AuthFile.parse(
        json.dumps(
            {
                "auths": {
                    "quay.io": {"auth": _b64("host:h")},
                    "quay.io/ns": {"auth": _b64("ns:n")},
                    "quay.io/ns/repo": {"auth": _b64("repo:r")},
                    "https://index.docker.io/v1/": {"auth": _b64("hub:pass:with:colons")},
                    "tok.io": {"identitytoken": "refresh-me"},
                    "helper.io": {},
                }
            }
        )
    )
    assert auth.lookup("quay.io/ns/repo") == Credentials(username="repo", password="r")
    assert auth.lookup("quay.io/ns/other") == Credentials(username="ns", password="n")
    assert auth.lookup("quay.io/else/x") == Credentials(username="host", password="h")
    hub = auth.lookup("docker.io/library/busybox")
    assert hub == Credentials(username="hub", password="pass:with:colons")
    assert auth.lookup("tok.io/x") == Credentials(identity_token="refresh-me")
    assert auth.lookup("helper.io/x") is None
    assert auth.lookup("other.io/x") is None
    assert "pass" not in repr(hub)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"auths": []}', "must be an object"),
        ('{"auths": {"a.io": {"auth": "%%%"}}}', "base64"),
        ('{"auths": {"a.io": {"auth": "' + _b64("nocolon") + '"}}}', "user:password"),
        ('{"auths": {"a.io": {"auth": 1}}}', "non-string"),
    ],
)
def test_bad_auth_files(text: str, why: str) -> None:
    with pytest.raises(ConfigFileError, match=why):
        AuthFile.parse(text, "auth.json")


def test_store_order_and_explicit(tmp_path: Path) -> None:
    first = tmp_path / "auth.json"
    second = tmp_path / "config.json"
    first.write_text(json.dumps({"auths": {"a.io": {"auth": _b64("first:1")}}}))
    second.write_text(
        json.dumps({"auths": {"a.io": {"auth": _b64("second:2")}, "b.io": {"auth": _b64("b:2")}}})
    )
    store = CredentialStore([first, tmp_path / "missing.json", second])
    assert store.lookup("a.io/x").username == "first"
    assert store.lookup("b.io/x").username == "b"
    assert store.lookup("c.io/x").anonymous
    explicit = CredentialStore([first], explicit={"a.io": Credentials(registry_token="bearer")})
    assert explicit.lookup("a.io/x").registry_token == "bearer"


def test_default_files(tmp_path: Path) -> None:
    assert default_auth_files({"REGISTRY_AUTH_FILE": "/x/auth.json", "HOME": "/h"}) == [
        Path("/x/auth.json")
    ]
    files = default_auth_files({"HOME": "/h"})
    assert files[1:] == [Path("/h/.config/containers/auth.json"), Path("/h/.docker/config.json")]
    assert files[0].name == "auth.json" and files[0].parent.parent == Path("/run/containers")
    files = default_auth_files({"HOME": "/h", "XDG_RUNTIME_DIR": "/run/user/7"})
    assert files[0] == Path("/run/user/7/containers/auth.json")


def test_cri_credentials() -> None:
    creds = Credentials.from_cri(auth=_b64("u:p"), identity_token="t")
    assert (creds.username, creds.password, creds.identity_token) == ("u", "p", "t")
    assert Credentials.from_cri(username="x", password="y", auth=_b64("u:p")).username == "x"
    assert Credentials.from_cri(registry_token="r").registry_token == "r"
    assert Credentials().anonymous and not creds.anonymous
