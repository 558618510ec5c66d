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
    ShortNameError,
    SizeMismatchError,
    UnsupportedManifestError,
)
from ociimage.layout import LayoutImage, OCILayout, OCILayoutSink
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
from ociimage.resolved import ResolvedImage
from ociimage.sink import BlobWriter, PullSink
from ociimage.tls import DEFAULT_CERTS_DIRS, TLSConfig
from ociimage.trust import PolicyDecision, evaluate_policy

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CERTS_DIRS",
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
    "RetryPolicy",
    "ShortNameError",
    "ShortNameMode",
    "ShortNameResolution",
    "SignatureStorage",
    "SignedBy",
    "SignedIdentity",
    "SigstoreSigned",
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
