"""CPU rates: nano-cores from two cumulative samples of the same cgroup.

The CRI's ``usage_nano_cores`` is a rate, so crid keeps the previous sample of every
cgroup it was asked about. The first sample of a cgroup has no rate (reported unset);
a sample taken within ``min_interval_ns`` of the previous one reports the last rate
rather than a noisy one over a few microseconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["CpuRates"]


@dataclass(frozen=True, kw_only=True)
class _Sample:
    timestamp_ns: int
    usage_ns: int
    rate: int | None


class CpuRates:
    """The last CPU sample per cgroup, and the rates they give."""

    def __init__(self, min_interval_ns: int = 10_000_000) -> None:
        self._min_interval_ns = min_interval_ns
        self._samples: dict[str, _Sample] = {}
        self._lock = threading.Lock()

    def rate(self, cgroup: str, timestamp_ns: int, usage_ns: int | None) -> int | None:
        """Record a sample of ``cgroup``; nano-cores since the previous one, if any."""
        if usage_ns is None:
            with self._lock:
                self._samples.pop(cgroup, None)
            return None
        with self._lock:
            previous = self._samples.get(cgroup)
            if previous is None or usage_ns < previous.usage_ns:
                self._samples[cgroup] = _Sample(
                    timestamp_ns=timestamp_ns, usage_ns=usage_ns, rate=None
                )
                return None
            elapsed = timestamp_ns - previous.timestamp_ns
            if elapsed < self._min_interval_ns:
                return previous.rate
            rate = (usage_ns - previous.usage_ns) * 1_000_000_000 // elapsed
            self._samples[cgroup] = _Sample(timestamp_ns=timestamp_ns, usage_ns=usage_ns, rate=rate)
            return rate

    def forget_except(self, cgroups: set[str]) -> None:
        """Drop the samples of cgroups no longer asked about (removed containers)."""
        with self._lock:
            for cgroup in [c for c in self._samples if c not in cgroups]:
                del self._samples[cgroup]

    def __len__(self) -> int:
        return len(self._samples)
