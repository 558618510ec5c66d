"""The one table that turns library and crid exceptions into gRPC status codes.

Libraries never import grpc; they raise their own exceptions, and RPC handlers let
them propagate. :func:`translate_errors` wraps each handler, finds the most specific
class in ``STATUS_CODES`` along the exception's MRO, and aborts the RPC with that code
and the exception's message. A test checks that every public exception class of every
package has its own entry, so a new exception cannot silently become UNKNOWN.
"""

from __future__ import annotations

import errno
import functools
import inspect
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

import ociimage.errors
import ocinet.errors
import ocispec.errors
import ocistore.errors
from crid import errors

__all__ = ["STATUS_CODES", "no_space", "status_code_for", "translate_errors"]

_log = logging.getLogger(__name__)
_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[Any] | AsyncIterator[Any]])

STATUS_CODES: dict[type[BaseException], grpc.StatusCode] = {
    ocispec.errors.SpecError: grpc.StatusCode.INVALID_ARGUMENT,
    ocispec.errors.DecodeError: grpc.StatusCode.INVALID_ARGUMENT,
    ocispec.errors.SchemaValidationError: grpc.StatusCode.INVALID_ARGUMENT,
    ocispec.errors.InvalidDigestError: grpc.StatusCode.INVALID_ARGUMENT,
    ocispec.errors.PlatformError: grpc.StatusCode.INVALID_ARGUMENT,
    ocispec.errors.GenerateError: grpc.StatusCode.INVALID_ARGUMENT,
    ocispec.errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    ocispec.errors.UserResolutionError: grpc.StatusCode.FAILED_PRECONDITION,
    ocispec.errors.RunAsNonRootError: grpc.StatusCode.FAILED_PRECONDITION,
    ocispec.errors.SysctlError: grpc.StatusCode.INVALID_ARGUMENT,
    ocispec.errors.SeccompProfileError: grpc.StatusCode.INVALID_ARGUMENT,
    ociimage.errors.ImageError: grpc.StatusCode.UNKNOWN,
    ociimage.errors.InvalidReferenceError: grpc.StatusCode.INVALID_ARGUMENT,
    ociimage.errors.ConfigFileError: grpc.StatusCode.FAILED_PRECONDITION,
    ociimage.errors.ShortNameError: grpc.StatusCode.INVALID_ARGUMENT,
    ociimage.errors.BlockedRegistryError: grpc.StatusCode.PERMISSION_DENIED,
    ociimage.errors.RegistryError: grpc.StatusCode.UNKNOWN,
    ociimage.errors.AuthenticationError: grpc.StatusCode.UNAUTHENTICATED,
    ociimage.errors.ContentNotFoundError: grpc.StatusCode.NOT_FOUND,
    ociimage.errors.RegistryUnavailableError: grpc.StatusCode.UNAVAILABLE,
    ociimage.errors.ResponseTooLargeError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ociimage.errors.UnsupportedManifestError: grpc.StatusCode.FAILED_PRECONDITION,
    ociimage.errors.IntegrityError: grpc.StatusCode.DATA_LOSS,
    ociimage.errors.DigestMismatchError: grpc.StatusCode.DATA_LOSS,
    ociimage.errors.SizeMismatchError: grpc.StatusCode.DATA_LOSS,
    ociimage.errors.NoMatchingPlatformError: grpc.StatusCode.NOT_FOUND,
    ociimage.errors.ProgressTimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    ociimage.errors.LookasideError: grpc.StatusCode.UNAVAILABLE,
    ociimage.errors.LayoutError: grpc.StatusCode.INVALID_ARGUMENT,
    ociimage.errors.PolicyRejectedError: grpc.StatusCode.PERMISSION_DENIED,
    ociimage.errors.SignatureVerificationError: grpc.StatusCode.PERMISSION_DENIED,
    ocistore.errors.StoreError: grpc.StatusCode.INTERNAL,
    ocistore.errors.StoreLockedError: grpc.StatusCode.UNAVAILABLE,
    ocistore.errors.BlobNotFoundError: grpc.StatusCode.NOT_FOUND,
    ocistore.errors.DigestMismatchError: grpc.StatusCode.DATA_LOSS,
    ocistore.errors.LayerError: grpc.StatusCode.INTERNAL,
    ocistore.errors.UnsupportedMediaTypeError: grpc.StatusCode.INVALID_ARGUMENT,
    ocistore.errors.DiffIDMismatchError: grpc.StatusCode.DATA_LOSS,
    ocistore.errors.UnsafeLayerError: grpc.StatusCode.INVALID_ARGUMENT,
    ocistore.errors.LayerLimitError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ocistore.errors.ImageNotFoundError: grpc.StatusCode.NOT_FOUND,
    ocistore.errors.AmbiguousImageError: grpc.StatusCode.INVALID_ARGUMENT,
    ocistore.errors.ImageInUseError: grpc.StatusCode.FAILED_PRECONDITION,
    ocistore.errors.ContainerNotFoundError: grpc.StatusCode.NOT_FOUND,
    ocistore.errors.ContainerExistsError: grpc.StatusCode.ALREADY_EXISTS,
    ocistore.errors.MountError: grpc.StatusCode.INTERNAL,
    ocistore.errors.DatabaseCorruptError: grpc.StatusCode.DATA_LOSS,
    ocistore.errors.LayoutError: grpc.StatusCode.INVALID_ARGUMENT,
    ocistore.errors.SubPathError: grpc.StatusCode.INVALID_ARGUMENT,
    ocistore.errors.SubPathNotFoundError: grpc.StatusCode.NOT_FOUND,
    ocinet.errors.NetError: grpc.StatusCode.INTERNAL,
    ocinet.errors.CNIError: grpc.StatusCode.INTERNAL,
    ocinet.errors.PluginTimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    ocinet.errors.PluginNotFoundError: grpc.StatusCode.FAILED_PRECONDITION,
    ocinet.errors.ConfigError: grpc.StatusCode.FAILED_PRECONDITION,
    ocinet.errors.NetworkNotFoundError: grpc.StatusCode.FAILED_PRECONDITION,
    ocinet.errors.NetworkNotReadyError: grpc.StatusCode.FAILED_PRECONDITION,
    ocinet.errors.ResultError: grpc.StatusCode.INTERNAL,
    ocinet.errors.NamespaceError: grpc.StatusCode.INTERNAL,
    errors.CridError: grpc.StatusCode.INTERNAL,
    errors.ConfigError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.SocketInUseError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.OCIRuntimeError: grpc.StatusCode.INTERNAL,
    errors.ContainerNotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.ConmonError: grpc.StatusCode.INTERNAL,
    errors.RuntimeTimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.StateError: grpc.StatusCode.INTERNAL,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.NameReservedError: grpc.StatusCode.ALREADY_EXISTS,
    errors.AmbiguousIdError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.CgroupError: grpc.StatusCode.INTERNAL,
    errors.RuntimeHandlerError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidConfigError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.UnsupportedConfigError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.InfraImageError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.SandboxNotReadyError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ExecTimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.InvalidStateError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.ContainerNotRunningError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.NotSupportedError: grpc.StatusCode.UNIMPLEMENTED,
    errors.StreamingError: grpc.StatusCode.INTERNAL,
    errors.SpdyProtocolError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.StreamTokenError: grpc.StatusCode.NOT_FOUND,
    errors.NRIError: grpc.StatusCode.INTERNAL,
    errors.NRIProtocolError: grpc.StatusCode.INTERNAL,
    errors.NRIClosedError: grpc.StatusCode.UNAVAILABLE,
    errors.NRITimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.NRIPluginError: grpc.StatusCode.UNKNOWN,
    errors.NRIRejectedError: grpc.StatusCode.FAILED_PRECONDITION,
}


#: errno values of a full file system (ENOSPC) or an exhausted quota (EDQUOT).
_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13


def no_space(error: BaseException) -> bool:
    """Whether ``error`` or what caused it is a full disk: an ENOSPC/EDQUOT ``OSError``
    or SQLite's SQLITE_FULL, however deeply a library wrapped it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _NO_SPACE_ERRNOS:
            return True
        if getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        current = current.__cause__ or current.__context__
    return False


def status_code_for(error: BaseException) -> grpc.StatusCode | None:
    """The status code of the most specific mapped class of ``error``, if any; a full
    disk anywhere in its chain is RESOURCE_EXHAUSTED whatever wrapped it."""
    if no_space(error):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    for cls in type(error).__mro__:
        code = STATUS_CODES.get(cls)
        if code is not None:
            return code
    return None


def _message(err: BaseException, code: grpc.StatusCode) -> str:
    text = str(err) or type(err).__name__
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and no_space(err):
        lowered = text.lower()
        if "no space" not in lowered:
            text = f"no space left on device: {text}"
    return text


async def _abort(handler: Callable[..., Any], err: BaseException, context: Any) -> None:
    code = status_code_for(err)
    if code is None:  # an OSError that is not a full disk: as before, the RPC's bug
        raise err
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        _log.exception("rpc failed", extra={"rpc": handler.__name__})
    elif code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        _log.warning("rpc failed: %s", err, extra={"rpc": handler.__name__})
    await context.abort(code, _message(err, code))


#: What the wrapper catches: every mapped class, and OSError or an SQLite error raised
#: by a full disk (others are re-raised unchanged).
_CAUGHT: tuple[type[BaseException], ...] = (*STATUS_CODES, OSError, sqlite3.Error)


def translate_errors(handler: _Handler) -> _Handler:
    """Decorate an RPC handler so library exceptions end the call with their status.

    Works for unary handlers (coroutines) and server-streaming ones (async generators).
    """
    if inspect.isasyncgenfunction(handler):

        @functools.wraps(handler)
        async def streaming(self: object, request: object, context: Any) -> AsyncIterator[Any]:
            try:
                async for reply in handler(self, request, context):
                    yield reply
            except _CAUGHT as err:
                await _abort(handler, err, context)

        return streaming  # type: ignore[return-value]

    @functools.wraps(handler)
    async def wrapper(self: object, request: object, context: Any) -> Any:
        try:
            return await handler(self, request, context)  # type: ignore[misc]
        except _CAUGHT as err:
            await _abort(handler, err, context)

    return wrapper  # type: ignore[return-value]
