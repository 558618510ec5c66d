"""ociimage: image references, registries.conf, auth, a registry client and daemonless pulls.

Pull an image into an OCI layout (or any :class:`PullSink`, such as ocistore's)::

    from ociimage import OCILayoutSink, load_registries_conf, pull_sync

    result = pull_sync("quay.io/ns/app:1", OCILayoutSink("/tmp/app"),
                       registries=load_registries_conf())
    print(result.repo_digest)

Long-running programs (crid) keep one :class:`Puller` so concurrent pulls share
connections, tokens and in-flight blob downloads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ociimage._retry import RetryPolicy
    from ociimage.auth import AuthFile, Credentials, CredentialStore, default_auth_files
    from ociimage.client import MANIFEST_MEDIA_TYPES, FetchedManifest, RegistryClient
    from ociimage.errors import (
        AuthenticationError,
        BlockedRegistryError,
        ConfigFileError,
        ContentNotFoundError,
        DigestMismatchError,
        ImageError,
        IntegrityError,
        InvalidReferenceError,
        LayoutError,
        LookasideError,
        NoMatchingPlatformError,
        PolicyRejectedError,
        ProgressTimeoutError,
        RegistryError,
        RegistryUnavailableError,
        ResponseTooLargeError,
        ShortNameError,
        SizeMismatchError,
        UnsupportedManifestError,
    )
    from ociimage.layout import LayoutImage, OCILayout, OCILayoutSink
    from ociimage.limits import DEFAULT_LIMITS, ResponseLimits
    from ociimage.policy import (
        DEFAULT_POLICY,
        AcceptAnything,
        Policy,
        Reject,
        Requirement,
        SignedBy,
        SignedIdentity,
        SigstoreSigned,
        UnknownRequirement,
        load_policy,
    )
    from ociimage.pull import (
        ProgressEvent,
        ProgressKind,
        Puller,
        PullResult,
        pull,
        pull_sync,
    )
    from ociimage.push import PushResult, push_layout, push_layout_sync
    from ociimage.reference import Reference, is_qualified, parse_reference, split_reference
    from ociimage.registries import (
        DEFAULT_REGISTRIES_CONF,
        Mirror,
        PullFromMirror,
        PullSource,
        RegistriesConfig,
        Registry,
        ShortNameMode,
        ShortNameResolution,
        load_registries_conf,
    )
    from ociimage.registries_d import (
        DEFAULT_REGISTRIES_D,
        RegistriesD,
        SignatureStorage,
        load_registries_d,
    )
    from ociimage.resolved import LocatedImage, ResolvedImage
    from ociimage.singleflight import SingleFlight
    from ociimage.sink import BlobWriter, PullSink
    from ociimage.tls import DEFAULT_CERTS_DIRS, TLSConfig
    from ociimage.trust import PolicyDecision, evaluate_policy

# Names are loaded from their modules on first use: importing ociimage (or one light
# module such as ociimage.errors) does not load the registry client, httpx and
# cryptography until a program really pulls.
_SOURCES = {
    "AcceptAnything": "ociimage.policy",
    "AuthFile": "ociimage.auth",
    "AuthenticationError": "ociimage.errors",
    "BlobWriter": "ociimage.sink",
    "BlockedRegistryError": "ociimage.errors",
    "ConfigFileError": "ociimage.errors",
    "ContentNotFoundError": "ociimage.errors",
    "CredentialStore": "ociimage.auth",
    "Credentials": "ociimage.auth",
    "DEFAULT_CERTS_DIRS": "ociimage.tls",
    "DEFAULT_LIMITS": "ociimage.limits",
    "DEFAULT_POLICY": "ociimage.policy",
    "DEFAULT_REGISTRIES_CONF": "ociimage.registries",
    "DEFAULT_REGISTRIES_D": "ociimage.registries_d",
    "DigestMismatchError": "ociimage.errors",
    "FetchedManifest": "ociimage.client",
    "ImageError": "ociimage.errors",
    "IntegrityError": "ociimage.errors",
    "InvalidReferenceError": "ociimage.errors",
    "LayoutError": "ociimage.errors",
    "LayoutImage": "ociimage.layout",
    "LookasideError": "ociimage.errors",
    "MANIFEST_MEDIA_TYPES": "ociimage.client",
    "Mirror": "ociimage.registries",
    "NoMatchingPlatformError": "ociimage.errors",
    "OCILayout": "ociimage.layout",
    "OCILayoutSink": "ociimage.layout",
    "Policy": "ociimage.policy",
    "PolicyDecision": "ociimage.trust",
    "PolicyRejectedError": "ociimage.errors",
    "ProgressEvent": "ociimage.pull",
    "ProgressKind": "ociimage.pull",
    "ProgressTimeoutError": "ociimage.errors",
    "PullFromMirror": "ociimage.registries",
    "PullResult": "ociimage.pull",
    "PullSink": "ociimage.sink",
    "PullSource": "ociimage.registries",
    "Puller": "ociimage.pull",
    "SingleFlight": "ociimage.singleflight",
    "PushResult": "ociimage.push",
    "Reference": "ociimage.reference",
    "RegistriesConfig": "ociimage.registries",
    "RegistriesD": "ociimage.registries_d",
    "Registry": "ociimage.registries",
    "RegistryClient": "ociimage.client",
    "RegistryError": "ociimage.errors",
    "RegistryUnavailableError": "ociimage.errors",
    "ResponseLimits": "ociimage.limits",
    "ResponseTooLargeError": "ociimage.errors",
    "Reject": "ociimage.policy",
    "Requirement": "ociimage.policy",
    "LocatedImage": "ociimage.resolved",
    "ResolvedImage": "ociimage.resolved",
    "RetryPolicy": "ociimage._retry",
    "ShortNameError": "ociimage.errors",
    "ShortNameMode": "ociimage.registries",
    "ShortNameResolution": "ociimage.registries",
    "SignatureStorage": "ociimage.registries_d",
    "SignedBy": "ociimage.policy",
    "SignedIdentity": "ociimage.policy",
    "SigstoreSigned": "ociimage.policy",
    "SizeMismatchError": "ociimage.errors",
    "TLSConfig": "ociimage.tls",
    "UnknownRequirement": "ociimage.policy",
    "UnsupportedManifestError": "ociimage.errors",
    "default_auth_files": "ociimage.auth",
    "evaluate_policy": "ociimage.trust",
    "is_qualified": "ociimage.reference",
    "load_policy": "ociimage.policy",
    "load_registries_conf": "ociimage.registries",
    "load_registries_d": "ociimage.registries_d",
    "parse_reference": "ociimage.reference",
    "pull": "ociimage.pull",
    "pull_sync": "ociimage.pull",
    "push_layout": "ociimage.push",
    "push_layout_sync": "ociimage.push",
    "split_reference": "ociimage.reference",
}


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module 'ociimage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CERTS_DIRS",
    "DEFAULT_LIMITS",
    "DEFAULT_POLICY",
    "DEFAULT_REGISTRIES_CONF",
    "DEFAULT_REGISTRIES_D",
    "MANIFEST_MEDIA_TYPES",
    "AcceptAnything",
    "AuthFile",
    "AuthenticationError",
    "BlobWriter",
    "BlockedRegistryError",
    "ConfigFileError",
    "ContentNotFoundError",
    "CredentialStore",
    "Credentials",
    "DigestMismatchError",
    "FetchedManifest",
    "ImageError",
    "IntegrityError",
    "InvalidReferenceError",
    "LayoutError",
    "LayoutImage",
    "LocatedImage",
    "LookasideError",
    "Mirror",
    "NoMatchingPlatformError",
    "OCILayout",
    "OCILayoutSink",
    "Policy",
    "PolicyDecision",
    "PolicyRejectedError",
    "ProgressEvent",
    "ProgressKind",
    "ProgressTimeoutError",
    "PullFromMirror",
    "PullResult",
    "PullSink",
    "PullSource",
    "Puller",
    "PushResult",
    "Reference",
    "RegistriesConfig",
    "RegistriesD",
    "Registry",
    "RegistryClient",
    "RegistryError",
    "RegistryUnavailableError",
    "Reject",
    "Requirement",
    "ResolvedImage",
    "ResponseLimits",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ShortNameError",
    "ShortNameMode",
    "ShortNameResolution",
    "SignatureStorage",
    "SignedBy",
    "SignedIdentity",
    "SigstoreSigned",
    "SingleFlight",
    "SizeMismatchError",
    "TLSConfig",
    "UnknownRequirement",
    "UnsupportedManifestError",
    "__version__",
    "default_auth_files",
    "evaluate_policy",
    "is_qualified",
    "load_policy",
    "load_registries_conf",
    "load_registries_d",
    "parse_reference",
    "pull",
    "pull_sync",
    "push_layout",
    "push_layout_sync",
    "split_reference",
]
