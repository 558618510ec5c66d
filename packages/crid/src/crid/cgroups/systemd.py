"""systemd's manager API over D-Bus: transient scopes and their resource properties.

What the systemd cgroup driver asks of systemd, as CRI-O does: a transient scope per
process group (``StartTransientUnit`` with ``PIDs``, ``Slice`` and resource
properties), property changes on a running unit (``SetUnitProperties``), and stopping a
scope (``StopUnit``). The connection is jeepney's blocking one (pure Python, no C
library, and no event loop of its own to reconcile with grpc.aio's): every call blocks,
so async callers run them in a thread. ``StartTransientUnit`` returns once systemd
queued the job; :meth:`Systemd.start_scope` waits until the unit is active.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from jeepney import (  # type: ignore[import-untyped]
    DBusAddress,
    DBusErrorResponse,
    new_method_call,
)
from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]
from jeepney.wrappers import unwrap_msg  # type: ignore[import-untyped]

from crid.errors import CgroupError

__all__ = ["Systemd", "UnitProperty", "escape_unit_path"]

#: One property as systemd's API takes it: (name, (D-Bus signature, value)).
UnitProperty = tuple[str, tuple[str, Any]]

_BUS = "org.freedesktop.systemd1"
_MANAGER = DBusAddress(
    "/org/freedesktop/systemd1", bus_name=_BUS, interface="org.freedesktop.systemd1.Manager"
)
_TIMEOUT = 30.0


def escape_unit_path(name: str) -> str:
    """The object path systemd gives a unit (bytes other than [A-Za-z0-9] as _XX)."""
    escaped = "".join(
        ch if ch.isascii() and ch.isalnum() else "".join(f"_{b:02x}" for b in ch.encode())
        for ch in name
    )
    return f"/org/freedesktop/systemd1/unit/{escaped}"


class Systemd:
    """One connection to systemd's manager on the system bus (blocking; not shared
    between threads)."""

    def __init__(self, bus: str = "SYSTEM") -> None:
        try:
            self._conn = open_dbus_connection(bus=bus)
        except (OSError, TimeoutError) as err:
            raise CgroupError(f"cannot reach systemd over D-Bus ({bus} bus): {err}") from err

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Systemd:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self, address: DBusAddress, method: str, signature: str, body: tuple[Any, ...]
    ) -> Any:
        message = new_method_call(address, method, signature, body)
        try:
            reply = self._conn.send_and_get_reply(message, timeout=_TIMEOUT)
        except (OSError, TimeoutError) as err:
            raise CgroupError(f"systemd {method}: {err}") from err
        try:
            return unwrap_msg(reply)
        except DBusErrorResponse as err:
            raise CgroupError(
                f"systemd {method}: {err.name}: {' '.join(map(str, err.data))}"
            ) from err

    def start_scope(
        self, name: str, pids: list[int], properties: list[UnitProperty], *, slice_: str = ""
    ) -> None:
        """Start transient scope ``name`` holding ``pids`` (in ``slice_``), then wait
        until systemd reports it active."""
        props: list[UnitProperty] = [("PIDs", ("au", pids)), *properties]
        if slice_:
            props.append(("Slice", ("s", slice_)))
        self._call(_MANAGER, "StartTransientUnit", "ssa(sv)a(sa(sv))", (name, "fail", props, []))
        self._wait_active(name)

    def set_properties(self, name: str, properties: list[UnitProperty]) -> None:
        """Change resource properties of a running unit (runtime only: not persisted)."""
        self._call(_MANAGER, "SetUnitProperties", "sba(sv)", (name, True, properties))

    def stop(self, name: str) -> None:
        """Stop unit ``name`` (its processes are killed); a unit already gone is fine."""
        try:
            self._call(_MANAGER, "StopUnit", "ss", (name, "replace"))
        except CgroupError as err:
            if "NoSuchUnit" not in str(err):
                raise

    def active_state(self, name: str) -> str:
        """The unit's ``ActiveState`` (``active``, ``failed``, ``inactive``, ...)."""
        unit = DBusAddress(
            escape_unit_path(name), bus_name=_BUS, interface="org.freedesktop.DBus.Properties"
        )
        (value,) = self._call(unit, "Get", "ss", ("org.freedesktop.systemd1.Unit", "ActiveState"))
        return str(value[1])

    def property(self, name: str, interface: str, prop: str) -> Any:
        """One property of a unit (``interface`` is e.g. ``org.freedesktop.systemd1.Scope``)."""
        unit = DBusAddress(
            escape_unit_path(name), bus_name=_BUS, interface="org.freedesktop.DBus.Properties"
        )
        (value,) = self._call(unit, "Get", "ss", (interface, prop))
        return value[1]

    def _wait_active(self, name: str, timeout: float = _TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            state = self.active_state(name)
            if state == "active":
                return
            if state == "failed" or time.monotonic() > deadline:
                raise CgroupError(f"systemd unit {name} did not become active (state {state})")
            time.sleep(0.01)
