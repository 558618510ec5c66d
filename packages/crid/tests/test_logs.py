"""crid's log lines: key=value or JSON, with the record's extra fields."""

from __future__ import annotations

import json
import logging

from crid.logs import JsonFormatter, KeyValueFormatter


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("crid.test", logging.INFO, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def test_key_value_quotes_what_needs_it() -> None:
    line = KeyValueFormatter().format(record("pod started", pod="web-1", path="/a b"))
    assert " level=info logger=crid.test " in line
    assert 'msg="pod started"' in line
    assert "pod=web-1" in line
    assert 'path="/a b"' in line
    assert line.startswith("time=") and line.split()[0].endswith("Z")


def test_json_is_one_object_with_extras() -> None:
    line = JsonFormatter().format(record("pulled", image="busybox", bytes=42))
    data = json.loads(line)
    assert data["msg"] == "pulled"
    assert data["image"] == "busybox"
    assert data["bytes"] == 42
    assert data["level"] == "info"


def test_exceptions_are_included() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("failed")
        rec.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(JsonFormatter().format(rec))["error"]
    assert "error=" in KeyValueFormatter().format(rec)
