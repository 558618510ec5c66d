"""registries.conf is parsed once and again only when one of its files changes."""

from __future__ import annotations

import os
from pathlib import Path

from crid.config import ImageConfig
from crid.images.registries import RegistriesCache


def _touch_later(path: Path) -> None:
    """Move the modification time on, as an edit a moment later would."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_changes_to_the_file_and_drop_ins_are_seen_and_nothing_else_reparses(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "registries.conf"
    dropins = tmp_path / "registries.conf.d"
    conf.write_text('unqualified-search-registries = ["one.test"]\n')
    cache = RegistriesCache(
        ImageConfig(registries_conf=str(conf), registries_conf_dir=str(dropins))
    )
    first = cache.get()
    assert first.unqualified_search_registries == ("one.test",)
    assert cache.get() is first  # unchanged: the parsed value again, no parse

    conf.write_text('unqualified-search-registries = ["two.test"]\n')
    _touch_later(conf)
    assert cache.get().unqualified_search_registries == ("two.test",)

    dropins.mkdir()
    (dropins / "50-more.conf").write_text('unqualified-search-registries = ["three.test"]\n')
    assert cache.get().unqualified_search_registries == ("three.test",)
    same = cache.get()
    assert cache.get() is same

    (dropins / "50-more.conf").unlink()
    assert cache.get().unqualified_search_registries == ("two.test",)

    conf.unlink()
    assert cache.get().unqualified_search_registries == ()
