"""``runtime.v1.ImageService``: thin RPC handlers over ociimage and ocistore."""

from __future__ import annotations

from crid._cri.v1 import api_pb2_grpc
from crid.services._base import ServiceBase
from crid.services._unimplemented import unimplemented_rest

__all__ = ["ImageService"]


@unimplemented_rest("ImageService")
class ImageService(ServiceBase, api_pb2_grpc.ImageServiceServicer):
    """The CRI image service; RPCs no mixin defines answer UNIMPLEMENTED."""
