"""The crid daemon: a grpc.aio server with the CRI services on a unix socket.

``Daemon`` owns the socket's whole life: a lock beside it (so two daemons never race
for one path), the stale-socket check, binding with mode 0660, and removal on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from pathlib import Path
from typing import IO

import grpc

from crid import __version__
from crid._cri.v1 import api_pb2_grpc
from crid.child_watcher import install_child_watcher
from crid.config import Config, parse_duration
from crid.context import Context
from crid.errors import CridError, SocketInUseError
from crid.inflight import InFlight
from crid.metrics import MetricsEndpoint, MetricsInterceptor
from crid.node import check_after_unclean_stop, mark_clean_shutdown
from crid.notify import notify
from crid.sandbox.lifecycle import Lifecycle
from crid.services import ImageService, RuntimeService
from crid.socket import SOCKET_MODE, prepare_socket
from crid.streaming import ServerOptions, StreamingServer

__all__ = ["Daemon", "serve"]

_log = logging.getLogger(__name__)

#: How long a stop waits for the rollbacks of RPCs it cancelled (beyond the grace period).
_ROLLBACK_WAIT = 30.0


class Daemon:
    """One running crid: start it, then stop it (or let a signal stop it)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.socket_path = Path(config.crid.api.listen)
        self._server: grpc.aio.Server | None = None
        self._images: ImageService | None = None
        self.context: Context | None = None
        self._lock: IO[bytes] | None = None
        self.metrics: MetricsEndpoint | None = None
        self.streaming: StreamingServer | None = None
        self._inflight = InFlight()

    def _acquire_lock(self) -> None:
        lock_path = self.socket_path.with_name(self.socket_path.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            handle.close()
            raise SocketInUseError(
                f"another crid holds {lock_path}: a daemon already serves {self.socket_path}"
            ) from err
        self._lock = handle

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def start(self) -> None:
        """Bind the socket and start answering RPCs."""
        install_child_watcher()  # subprocesses without a thread each (crid.child_watcher)
        await asyncio.to_thread(self._acquire_lock)
        try:
            await asyncio.to_thread(check_after_unclean_stop, self.config)
            await asyncio.to_thread(prepare_socket, self.socket_path)
            api = self.config.crid.api
            metrics = self.config.crid.metrics
            server = grpc.aio.server(
                interceptors=[
                    self._inflight,
                    *([MetricsInterceptor()] if metrics.enable_metrics else []),
                ],
                options=[
                    ("grpc.max_receive_message_length", api.grpc_max_recv_msg_size),
                    ("grpc.max_send_message_length", api.grpc_max_send_msg_size),
                ],
            )
            self.context = await Context.open(self.config)
            await Lifecycle.of(self.context).start()
            if metrics.enable_metrics:
                self.metrics = MetricsEndpoint(
                    host=metrics.metrics_host,
                    port=metrics.metrics_port,
                    registry=self.context.registry,
                )
                await self.metrics.start()
            self.streaming = StreamingServer(self.context, _stream_options(self.config))
            await self.streaming.start()
            runtime = RuntimeService(self.context)
            runtime.streaming = self.streaming
            image = ImageService(self.context)
            api_pb2_grpc.add_RuntimeServiceServicer_to_server(runtime, server)  # type: ignore[no-untyped-call]
            api_pb2_grpc.add_ImageServiceServicer_to_server(image, server)  # type: ignore[no-untyped-call]
            if server.add_insecure_port(f"unix://{self.socket_path}") == 0:
                raise CridError(f"cannot listen on {self.socket_path}")
            old_umask = os.umask(0o117)  # the socket is created 0660, never wider
            try:
                await server.start()
            finally:
                os.umask(old_umask)
            self.socket_path.chmod(SOCKET_MODE)
            self._server = server
            self._images = image
        except BaseException:
            await self._stop_streaming()
            await self._stop_metrics()
            await self._close_context()
            self._release_lock()
            raise
        _log.info("crid serving", extra={"version": __version__, "socket": str(self.socket_path)})
        notify("READY=1", f"STATUS=serving {self.socket_path}")

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new RPCs, let those in flight finish for ``grace`` seconds (default:
        ``shutdown_grace``), cancel the rest, wait for their rollbacks, then close.

        What an RPC cancelled here had made is undone (a pod or container being created
        is removed again) before the state database and the store close. A stop that
        completes writes the clean-shutdown marker last of all.
        """
        if grace is None:
            grace = parse_duration(self.config.crid.api.shutdown_grace)
        serving = self._server is not None
        if serving:
            notify("STOPPING=1")
        if self.context is not None:
            # Event streams never finish on their own: end them first, so that they close
            # cleanly (status OK) instead of holding the shutdown for the whole grace period.
            self.context.events.close()
        if self._server is not None:
            _log.info("crid stopping", extra={"grace": grace})
            await self._server.stop(grace)
            if not await self._inflight.cancel(_ROLLBACK_WAIT):
                _log.error("RPCs cancelled at shutdown did not finish unwinding")
                serving = False  # not clean: the next start checks storage
            self._server = None
            self.socket_path.unlink(missing_ok=True)
            _log.info("crid stopped", extra={"socket": str(self.socket_path)})
        if self.context is not None and not await self.context.rollbacks.wait(_ROLLBACK_WAIT):
            _log.error("rollbacks of cancelled RPCs did not finish: start-up will clean up")
            serving = False
        if self._images is not None:
            await self._images.images.puller.aclose()  # a lingering registry connection
            self._images = None
        await self._stop_streaming()
        await self._stop_metrics()
        await self._close_context()
        if serving:
            await asyncio.to_thread(mark_clean_shutdown, self.config)
        self._release_lock()

    async def _stop_streaming(self) -> None:
        if self.streaming is not None:
            await self.streaming.stop()
            self.streaming = None

    async def _stop_metrics(self) -> None:
        if self.metrics is not None:
            await self.metrics.stop()
            self.metrics = None

    async def _close_context(self) -> None:
        if self.context is not None:
            await Lifecycle.of(self.context).stop()
            await self.context.close()
            self.context = None


def _stream_options(config: Config) -> ServerOptions:
    """The streaming server's settings (durations were checked when the config loaded)."""
    api = config.crid.api
    return ServerOptions(
        address=api.stream_address,
        port=api.stream_port,
        tls_cert=api.stream_tls_cert,
        tls_key=api.stream_tls_key,
        token_ttl=parse_duration(api.stream_token_ttl),
        idle_timeout=parse_duration(api.stream_idle_timeout),
        max_connections=api.stream_max_connections,
        max_handshakes=api.stream_max_handshakes,
    )


async def serve(config: Config) -> None:
    """Run crid until SIGTERM or SIGINT, then shut it down cleanly."""
    daemon = Daemon(config)
    await daemon.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
        _log.info("signal received, shutting down")
    finally:
        # Handlers stay installed until the socket is gone: a second signal (a supervisor
        # forwarding the same SIGTERM, say) must not kill crid halfway through stopping.
        await daemon.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
