"""Every public exception of every package has its own gRPC status code."""

from __future__ import annotations

import importlib
import inspect

import grpc
import pytest

from crid.rpc_errors import STATUS_CODES, status_code_for

PACKAGES = ("ocispec", "ociimage", "ocistore", "ocinet", "crid")


def public_exceptions(package: str) -> list[type[BaseException]]:
    module = importlib.import_module(f"{package}.errors")
    found = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            found.append(obj)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_exception_is_mapped(package: str) -> None:
    classes = public_exceptions(package)
    assert classes, f"{package}.errors exports no exception"
    missing = [cls.__qualname__ for cls in classes if cls not in STATUS_CODES]
    assert not missing, f"add to crid.rpc_errors.STATUS_CODES: {package}.errors.{missing}"


def test_most_specific_class_wins() -> None:
    from crid.errors import ConfigError, CridError

    assert status_code_for(ConfigError("x")) == grpc.StatusCode.FAILED_PRECONDITION
    assert status_code_for(CridError("x")) == grpc.StatusCode.INTERNAL
    assert status_code_for(ValueError("x")) is None


async def test_translate_errors_aborts_a_real_call_with_the_mapped_code(tmp_path: object) -> None:
    from crid._cri.v1 import api_pb2
    from crid.errors import ConfigError
    from crid.rpc_errors import translate_errors

    class Service:
        @translate_errors
        async def version(self, request: object, context: object) -> api_pb2.VersionResponse:
            raise ConfigError("crid.toml: unknown key 'x'")

    service = Service()
    handler = grpc.method_handlers_generic_handler(
        "test.Service",
        {
            "Version": grpc.unary_unary_rpc_method_handler(
                service.version,
                request_deserializer=api_pb2.VersionRequest.FromString,
                response_serializer=api_pb2.VersionResponse.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                "/test.Service/Version",
                request_serializer=api_pb2.VersionRequest.SerializeToString,
                response_deserializer=api_pb2.VersionResponse.FromString,
            )
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call(api_pb2.VersionRequest())
    finally:
        await server.stop(0)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == "crid.toml: unknown key 'x'"


def test_fault_a_full_disk_anywhere_in_the_chain_is_resource_exhausted() -> None:
    import errno
    import sqlite3

    import ocistore.errors
    from crid.errors import StateError

    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError as err:
            raise ocistore.errors.LayerError("unpacking layer failed") from err
    except ocistore.errors.LayerError as wrapped:
        assert status_code_for(wrapped) == grpc.StatusCode.RESOURCE_EXHAUSTED
    sqlite_full = sqlite3.OperationalError("database or disk is full")
    sqlite_full.sqlite_errorcode = 13  # type: ignore[attr-defined]
    state = StateError("state database x: database or disk is full")
    state.__cause__ = sqlite_full
    assert status_code_for(state) == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Other OS errors are not a full disk, and keep their class's code (or none).
    assert status_code_for(OSError(errno.EACCES, "denied")) is None
    assert status_code_for(StateError("locked")) == grpc.StatusCode.INTERNAL
