"""``runtime.v1.ImageService``: thin RPC handlers over ociimage and ocistore."""

from __future__ import annotations

from crid._cri.v1 import api_pb2_grpc
from crid.config import Config
from crid.services._unimplemented import unimplemented_rest

__all__ = ["ImageService"]


@unimplemented_rest("ImageService")
class ImageService(api_pb2_grpc.ImageServiceServicer):
    """The CRI image service; RPCs not defined here answer UNIMPLEMENTED."""

    def __init__(self, config: Config) -> None:
        self._config = config
