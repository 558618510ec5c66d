"""``runtime.v1.ImageService``: thin RPC handlers over :mod:`crid.images`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.context import Context
from crid.images import FilesystemUsage, ImageCatalog, ImageRecord, verbose_info
from crid.metrics import record_pull
from crid.rpc_errors import translate_errors
from crid.services._base import RpcContext, ServiceBase
from crid.services._unimplemented import unimplemented_rest
from ociimage.auth import Credentials

__all__ = ["PLATFORM_ANNOTATION", "STREAM_CHUNK", "ImageService"]

#: Annotation (of the ImageSpec, else of the pod's sandbox config) naming the platform
#: to pull from a multi-platform index, e.g. ``linux/arm64/v8``; default: the host's.
PLATFORM_ANNOTATION = "crid.io/image-platform"
#: Images per StreamImagesResponse message.
STREAM_CHUNK = 100


def _image(record: ImageRecord) -> api_pb2.Image:
    return api_pb2.Image(
        id=record.id,
        repo_tags=record.repo_tags,
        repo_digests=record.repo_digests,
        size=record.size,
        uid=api_pb2.Int64Value(value=record.uid) if record.uid is not None else None,
        username=record.username,
        spec=api_pb2.ImageSpec(image=record.id),
        pinned=record.pinned,
    )


def _credentials(auth: api_pb2.AuthConfig) -> Credentials | None:
    """The request's credentials; None (use the auth files) when it carries none."""
    credentials = Credentials.from_cri(
        username=auth.username,
        password=auth.password,
        auth=auth.auth,
        identity_token=auth.identity_token,
        registry_token=auth.registry_token,
    )
    return None if credentials.anonymous else credentials


def _platform(request: api_pb2.PullImageRequest) -> str:
    for found in (request.image.annotations, request.sandbox_config.annotations):
        if found.get(PLATFORM_ANNOTATION):
            return found[PLATFORM_ANNOTATION]
    return ""


def _usage(usage: FilesystemUsage) -> api_pb2.FilesystemUsage:
    return api_pb2.FilesystemUsage(
        timestamp=usage.timestamp_ns,
        fs_id=api_pb2.FilesystemIdentifier(mountpoint=usage.mountpoint),
        used_bytes=api_pb2.UInt64Value(value=usage.used_bytes),
        inodes_used=api_pb2.UInt64Value(value=usage.inodes_used),
    )


async def _require_image(spec: api_pb2.ImageSpec, context: RpcContext) -> str:
    if not spec.image:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "image spec: 'image' is empty")
    return spec.image


class ImageRPCs(ServiceBase):
    """The image RPCs; :attr:`images` holds the logic."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.images = ImageCatalog(
            ctx.store,
            ctx.config.crid.image,
            ctx.layout.storage,
            on_pull_failure=ctx.gc.collect_store,
        )

    @translate_errors
    async def ListImages(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.ListImagesRequest, context: RpcContext
    ) -> api_pb2.ListImagesResponse:
        records = await self.images.list(request.filter.image.image)
        return api_pb2.ListImagesResponse(images=[_image(r) for r in records])

    async def StreamImages(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.StreamImagesRequest, context: RpcContext
    ) -> AsyncIterator[api_pb2.StreamImagesResponse]:
        records: Sequence[ImageRecord] = await self._stream_list(request, context)
        for start in range(0, len(records), STREAM_CHUNK):
            chunk = records[start : start + STREAM_CHUNK]
            yield api_pb2.StreamImagesResponse(images=[_image(r) for r in chunk])

    @translate_errors
    async def _stream_list(
        self, request: api_pb2.StreamImagesRequest, context: RpcContext
    ) -> list[ImageRecord]:
        return await self.images.list(request.filter.image.image)

    @translate_errors
    async def ImageStatus(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.ImageStatusRequest, context: RpcContext
    ) -> api_pb2.ImageStatusResponse:
        name = await _require_image(request.image, context)
        record = await self.images.status(name)
        if record is None:
            return api_pb2.ImageStatusResponse()  # unknown: no image, not an error
        info = verbose_info(record) if request.verbose else {}
        return api_pb2.ImageStatusResponse(image=_image(record), info=info)

    @translate_errors
    async def PullImage(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.PullImageRequest, context: RpcContext
    ) -> api_pb2.PullImageResponse:
        name = await _require_image(request.image, context)
        outcome = await self.images.pull(
            name, credentials=_credentials(request.auth), platform=_platform(request)
        )
        record_pull(outcome.downloaded_bytes, outcome.seconds)
        return api_pb2.PullImageResponse(image_ref=outcome.image.id)

    @translate_errors
    async def RemoveImage(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.RemoveImageRequest, context: RpcContext
    ) -> api_pb2.RemoveImageResponse:
        name = await _require_image(request.image, context)
        await self.images.remove(name)  # an unknown image is already removed: success
        return api_pb2.RemoveImageResponse()

    @translate_errors
    async def ImageFsInfo(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.ImageFsInfoRequest, context: RpcContext
    ) -> api_pb2.ImageFsInfoResponse:
        usage = await self.images.usage()
        return api_pb2.ImageFsInfoResponse(
            image_filesystems=[_usage(usage.images)],
            container_filesystems=[_usage(usage.containers)],
        )


@unimplemented_rest("ImageService")
class ImageService(ImageRPCs, api_pb2_grpc.ImageServiceServicer):
    """The CRI image service; RPCs no mixin defines answer UNIMPLEMENTED."""
