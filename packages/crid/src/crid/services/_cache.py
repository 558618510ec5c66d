"""Caches that keep List RPCs under a millisecond with hundreds of records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from google.protobuf.message import Message

__all__ = ["EncodedResponseCache", "MessageCache", "ResponseCache", "labels_match"]

_R = TypeVar("_R")
_M = TypeVar("_M")
_A = TypeVar("_A")
_P = TypeVar("_P", bound=Message)


def labels_match(labels: dict[str, str], selector: dict[str, str]) -> bool:
    """Whether every key=value of ``selector`` is among ``labels``."""
    return all(labels.get(key) == value for key, value in selector.items())


class MessageCache(Generic[_R, _M]):
    """The list item of each record, built once per record object.

    Records are frozen and replaced on every change, so the object itself tells whether a
    cached item is still right; building a hundred items costs more than the rest of a
    List RPC. A list of every record (``complete``) also drops the items of removed ones.
    """

    def __init__(self, build: Callable[[_R], _M], key: Callable[[_R], str]) -> None:
        self._build = build
        self._key = key
        self._entries: dict[str, tuple[_R, _M]] = {}

    def messages(self, records: Sequence[_R], *, complete: bool) -> list[_M]:
        """The items of ``records``, in their order."""
        entries = self._entries
        kept: dict[str, tuple[_R, _M]] = {} if complete else entries
        found = []
        for record in records:
            key = self._key(record)
            entry = entries.get(key)
            if entry is None or entry[0] is not record:
                entry = (record, self._build(record))
            kept[key] = entry
            found.append(entry[1])
        self._entries = kept
        return found

    def __len__(self) -> int:
        return len(self._entries)


class ResponseCache(Generic[_M, _A]):
    """The last answer, given again while its items are the same (a poll of a list that
    did not change): copying a hundred items into a new response costs ~0.1 ms.

    Items are compared identity first (in C), then by value; answers are never modified
    after they are built, so one may be sent to several callers.
    """

    def __init__(self, build: Callable[[list[_M]], _A]) -> None:
        self._build = build
        self._last: tuple[list[_M], _A] | None = None

    def response(self, items: list[_M]) -> _A:
        """The answer holding ``items``."""
        last = self._last
        if last is not None and last[0] == items:
            return last[1]
        answer = self._build(items)
        self._last = (items, answer)
        return answer


class EncodedResponseCache(ResponseCache[_M, _P]):
    """A :class:`ResponseCache` whose answer is also serialized once.

    A List handler returns :meth:`encoded`, which the server sends as it is (see
    :func:`crid.inflight.passing_bytes`): a poll of a list that did not change then costs
    no serialization, which for 100 pods' stats (44 KB) took 0.2 ms of every call.
    """

    def __init__(self, build: Callable[[list[_M]], _P]) -> None:
        super().__init__(build)
        self._encoded: tuple[_P, bytes] | None = None

    def encoded(self, items: list[_M]) -> bytes:
        """The answer holding ``items``, serialized."""
        answer = self.response(items)
        found = self._encoded
        if found is None or found[0] is not answer:
            found = self._encoded = (answer, answer.SerializeToString())
        return found[1]
