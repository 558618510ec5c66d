"""Answering every RPC crid has not built yet with a clear UNIMPLEMENTED status.

The generated servicer base classes raise ``NotImplementedError``, which grpc.aio
logs as a crash and reports as UNKNOWN. Instead, every method a servicer does not
define is filled with a handler that aborts with UNIMPLEMENTED and names the RPC.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

import grpc

from crid import __version__
from crid._cri.v1 import api_pb2, api_pb2_grpc

__all__ = ["implemented_methods", "unimplemented_rest"]

_T = TypeVar("_T", bound=type)


def _aborting(full_name: str) -> Any:
    async def handler(self: object, request: object, context: grpc.aio.ServicerContext) -> NoReturn:  # type: ignore[type-arg]
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{full_name} is not implemented by crid {__version__} yet",
        )
        raise AssertionError("unreachable: abort raises")

    handler.__name__ = full_name.rsplit("/", 1)[-1]
    handler.__crid_unimplemented__ = True  # type: ignore[attr-defined]
    return handler


def unimplemented_rest(service: str) -> Any:
    """Class decorator: fill in every RPC of ``service`` the class does not define."""

    def decorate(cls: _T) -> _T:
        descriptor = api_pb2.DESCRIPTOR.services_by_name[service]
        generated = {
            getattr(api_pb2_grpc, f"{service}Servicer").__dict__.get(m.name)
            for m in descriptor.methods
        }
        for method in descriptor.methods:
            # Defined by the class or one of its mixins, not just the generated base?
            if getattr(cls, method.name, None) in generated:
                full_name = f"/{descriptor.full_name}/{method.name}"
                setattr(cls, method.name, _aborting(full_name))
        return cls

    return decorate


def implemented_methods(cls: type, service: str) -> list[str]:
    """The RPC names of ``service`` that ``cls`` really implements."""
    descriptor = api_pb2.DESCRIPTOR.services_by_name[service]
    return [
        m.name
        for m in descriptor.methods
        if not getattr(getattr(cls, m.name, None), "__crid_unimplemented__", False)
    ]
