"""systemd's readiness protocol (sd_notify): one datagram to ``$NOTIFY_SOCKET``.

A ``Type=notify`` unit is "started" only once the daemon says ``READY=1``, so the
kubelet (ordered after crid) never dials a socket that does not answer yet; ``STOPPING=1``
tells systemd the stop it sees is deliberate. Without ``NOTIFY_SOCKET`` (crid run by
hand, by tests, or by another supervisor) every call does nothing. A name starting
with ``@`` is a socket in Linux's abstract namespace (a leading NUL byte).
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["notify"]

_log = logging.getLogger(__name__)


def _address(value: str) -> str | bytes | None:
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock and other forms systemd may use are not for a local daemon


def notify(*fields: str) -> bool:
    """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) to systemd; whether it was sent.

    A failure to send is logged, never raised: a missing notification costs a unit's
    start timeout, while an exception here would cost the running daemon.
    """
    target = os.environ.get("NOTIFY_SOCKET", "")
    if not target:
        return False
    address = _address(target)
    if address is None:
        _log.warning("NOTIFY_SOCKET %r is not a unix socket path: not notifying", target)
        return False
    message = "\n".join((*fields, f"MAINPID={os.getpid()}")).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, address)
    except OSError as err:
        _log.warning("cannot notify systemd at %s: %s", target, err)
        return False
    return True
