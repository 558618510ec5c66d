"""Retry with exponential backoff for transient registry failures (5xx, 429, dropped links)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

__all__ = ["RetryPolicy", "retry_after_seconds"]

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``attempts`` counts the first try; delays grow from ``base_delay`` by ``factor`` with
    jitter, capped at ``max_delay``; a server's ``Retry-After`` is honoured up to
    ``max_retry_after`` seconds.
    """

    attempts: int = 5
    base_delay: float = 0.2
    factor: float = 2.0
    max_delay: float = 10.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try number ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        backoff = min(self.base_delay * self.factor ** (attempt - 1), self.max_delay)
        return backoff * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        import email.utils  # rare (an HTTP-date Retry-After): 8 ms to import

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
