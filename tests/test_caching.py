"""Retries and caching on I/O tasks: ingest of an unchanged local source is served from Prefect's cache."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from curate import caching, ingest
from curate.ingest import Previous
from curate.settings import Settings
from curate.sources import discover
from tests.test_flow import NOW, settings_for


def ingest_states(settings: Settings, previous: Previous, today: dt.date) -> list[str]:
    """Run ingest_source for every source inside a flow; the names of the task states (Completed or Cached)."""
    from prefect import flow

    from flows.curate_run import ingest_source

    @flow
    def ingest_all() -> list[str]:
        task = ingest_source
        sources = discover(settings.sources_dir)[0]
        return [task(s, today, settings, previous, return_state=True).name for s in sources]

    return ingest_all()


def test_unchanged_local_sources_come_from_the_cache(prefect_harness, fixture_sources: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, fixture_sources)
    today = NOW.date()
    assert set(ingest_states(settings, Previous(), today)) == {"Completed"}
    assert set(ingest_states(settings, Previous(), today)) == {"Cached"}
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

    stored = [p for p in Path(PREFECT_LOCAL_STORAGE_PATH.value()).expanduser().iterdir() if p.name.startswith("ingest-")]
    assert stored
    for p in stored:  # written by ``caching.SERIALIZER``: pickle in base64 of one line (the record's JSON escapes no line ends)
        record = json.loads(p.read_bytes())
        assert record["metadata"]["serializer"] == {"type": "curate-ingest-pickle"} and "\n" not in record["result"]
    # any change to what the result depends on misses the cache
    assert set(ingest_states(settings, Previous(fingerprint="other"), today)) == {"Completed"}
    assert set(ingest_states(settings, Previous(), today + dt.timedelta(days=1))) == {"Completed"}
    with (fixture_sources / "beta_lines.tsv").open("a", encoding="utf-8") as f:
        f.write("\n")
    states = ingest_states(settings, Previous(), today)
    names = [s.source_id for s in discover(settings.sources_dir)[0]]
    assert dict(zip(names, states, strict=True)) == {"alpha_lines": "Cached", "beta_lines": "Completed"}


def test_cache_key_depends_on_content_not_on_the_file_time(fixture_sources: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, fixture_sources)
    source = next(s for s in discover(fixture_sources)[0] if s.source_id == "alpha_lines")
    inputs = {"source": source, "settings": settings, "previous": Previous(), "today": NOW.date()}
    key = caching.ingest_cache_key(None, inputs)
    assert key and key.startswith("ingest-")
    os.utime(source.path, (1, 1))  # type: ignore[arg-type]
    assert caching.ingest_cache_key(None, inputs) == key
    assert caching.ingest_cache_key(None, {**inputs, "settings": dataclasses.replace(settings, max_source_bytes=10)}) != key
    assert caching.ingest_cache_key(None, {**inputs, "source": dataclasses.replace(source, path=None)}) is None  # URL source
    with pytest.MonkeyPatch.context() as mp:  # other code: a result it parsed is not taken (its fingerprint is its own)
        mp.setattr(ingest, "CODE_VERSION", "other code")
        assert caching.ingest_cache_key(None, inputs) != key
    copy = tmp_path / "elsewhere" / "alpha_lines.csv"  # the same bytes in another folder are another source
    copy.parent.mkdir()
    copy.write_bytes(source.path.read_bytes())  # type: ignore[union-attr]
    assert caching.ingest_cache_key(None, {**inputs, "source": dataclasses.replace(source, path=copy)}) != key


def test_old_cache_entries_are_pruned(tmp_path: Path) -> None:
    old, new, other = tmp_path / "ingest-old", tmp_path / "ingest-new", tmp_path / "someone-else"
    for f in (old, new, other):
        f.write_text("x")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    os.utime(other, (time.time() - 3 * 86400,) * 2)
    assert caching.prune(tmp_path) == 1 and not old.exists() and new.exists() and other.exists()
    assert caching.prune(tmp_path / "missing") == 0


def test_ingest_is_retried_and_other_tasks_are_not() -> None:
    from flows.curate_run import build_core, export_release, ingest_source, load_warehouse

    assert ingest_source.retries == 2
    assert (load_warehouse.retries, build_core.retries, export_release.retries) == (0, 0, 0)  # writers are not replayed


def test_a_cached_result_is_read_from_disk_so_letting_go_of_a_runs_rows_leaves_it_whole(
    prefect_harness, fixture_sources: Path, tmp_path: Path
) -> None:
    """A run lets go of its sources' rows once they are in the warehouse (``_let_go_of_rows``) and of their problems
    once its reports are written; a later cache hit in the same process must still get them, so Prefect keeps no copy
    of its own in memory."""
    from prefect import flow

    from flows.curate_run import _let_go_of_rows, ingest_source, write_reports

    settings = settings_for(tmp_path, fixture_sources)
    source = discover(settings.sources_dir)[0][0]

    @flow
    def twice() -> list[object]:
        first = ingest_source(source, NOW.date(), settings, Previous(), return_state=True)
        _let_go_of_rows([first.result()])  # then its reports are written, and the rest let go of
        write_reports.fn(dataclasses.replace(settings, sources_dir=tmp_path / "apart"), [first.result()])  # (reports
        # beside the source would change its cache key: ``caching.ingest_cache_key``)
        second = ingest_source(source, NOW.date(), settings, Previous(), return_state=True)
        return [first.name, second.name, first.result(), second.result()]

    first_name, second_name, first, second = twice()
    assert (first_name, second_name) == ("Completed", "Cached")
    assert first.data == b"" and first.result.problems == [] and first.result.raw is None  # let go of
    assert first.result.accepted is not None and list(first.result.accepted.columns) == []  # (its count of rows kept)
    assert first.result.rows_accepted == second.result.rows_accepted
    assert second.result.accepted is not None and len(second.result.accepted) > 0 and second.data
    assert second.result.problems  # (the fixture source has a rejected row)


def test_an_unchanged_local_source_is_found_as_ingest_would_give_it(fixture_sources: Path, monkeypatch) -> None:
    """``unchanged_local`` gives what ``ingest`` gives a source whose bytes, options and code are those of its last
    parse (reused, not parsed); None for a changed file, one never parsed, one whose report is gone, a URL source, a
    file over the size limit, and whatever fails while reading it (its own task then reads it and says why)."""
    from curate import ingest as ing

    source = next(s for s in discover(fixture_sources)[0] if s.source_id == "alpha_lines")
    data = source.path.read_bytes()  # type: ignore[union-attr]
    previous = Previous(fingerprint=ing.fingerprint(hashlib.sha256(data).hexdigest(), source), rows_read=7, rows_accepted=6)
    parsed = ing.ingest(source, NOW.date(), 10**9, previous, None, None)  # type: ignore[arg-type]
    found = ing.unchanged_local(source, 10**9, previous)
    assert found is not None and parsed.reused and found.reused
    assert (found.data, found.fingerprint, found.origin, found.result) == (parsed.data, parsed.fingerprint, parsed.origin, parsed.result)
    assert found.result.rows_read == 7
    assert ing.unchanged_local(source, 10**9, Previous()) is None
    assert ing.unchanged_local(source, 10**9, previous, reports_exist=False) is None
    assert ing.unchanged_local(dataclasses.replace(source, path=None), 10**9, previous) is None
    assert ing.unchanged_local(source, 10, previous) is None
    source.path.write_bytes(data + b"\n")  # type: ignore[union-attr]
    assert ing.unchanged_local(source, 10**9, previous) is None
    source.path.write_bytes(data)  # type: ignore[union-attr]

    def broken(*_: object) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr(ing, "fingerprint", broken)
    assert ing.unchanged_local(source, 10**9, previous) is None


def test_a_result_a_worker_pickled_is_written_with_its_bytes_and_read_back_whole(fixture_sources: Path, monkeypatch) -> None:
    """A source checked in a worker process comes back as the bytes the worker pickled (``SourceResult.pickled``):
    the cache writes those bytes instead of pickling the result again, lets go of them once written, and reads the
    whole result back; a result checked here is written as it was before."""
    import pickle

    from curate import checking
    from curate.ingest import Ingested
    from schemas import distinct

    monkeypatch.setattr(distinct, "_ALONE", False)  # (``_checked_in_worker`` marks the process it runs in)
    source = next(s for s in discover(fixture_sources)[0] if s.source_id == "alpha_lines")
    assert source.path is not None
    data = source.path.read_bytes()
    here = checking.check_source(data, source.name, source.source_id, source.options, NOW.date(), source.format)
    sent = checking._sent_back(checking._checked_in_worker(data, source.name, source.source_id, source.options, NOW.date(), source.format))
    assert sent.pickled and here.pickled is None and sent.problems == here.problems and sent.problems
    assert sent.accepted is not None and here.accepted is not None and sent.accepted.equals(here.accepted)
    item = Ingested(sent, data, str(source.path), "fp")
    blob = caching.SERIALIZER.dumps(item)
    assert sent.pickled is None and item.result is sent  # let go of once written; the item itself is left as it was
    assert pickle.loads(caching.base64.b64decode(blob))[2] not in (None, b"")  # the worker's bytes, as they came
    back = caching.SERIALIZER.loads(blob)
    assert (back.data, back.origin, back.fingerprint) == (data, str(source.path), "fp")
    assert back.result.problems == here.problems and back.result.accepted.equals(here.accepted) and back.result.pickled is None
    plain = caching.SERIALIZER.loads(caching.SERIALIZER.dumps(Ingested(here, data, str(source.path), "fp")))
    assert plain.result.problems == here.problems and plain.result.raw.equals(here.raw)
