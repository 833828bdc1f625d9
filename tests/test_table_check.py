"""The release's CSV checks (curate.table_check) find what Frictionless's own full validation finds."""

from __future__ import annotations

import csv
import functools
import io
import json
import shutil
import threading
from concurrent.futures import Future
from pathlib import Path
from unittest import mock

import pytest
from frictionless import Package
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from curate import export, table_check
from tests.test_export import LISTINGS, NOW, listing

RICH = [
    *LISTINGS,
    listing("f", "Phones", ["SE"], phone="+46812345678", sms="+46712345678", languages=["sv", "en"], topics=["depression"]),
    listing("1", "Open always", ["NO", "SE"], always_open=True, description='Line one\nline two, "quoted"'),
]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export.publish(RICH, tmp_path_factory.mktemp("exports"), NOW, 14, {}).path


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _write(path: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _set(rows: list[list[str]], row: int, column: str, value: str) -> list[list[str]]:
    rows[row][rows[0].index(column)] = value
    return rows


#: (file in the release, what is done to its rows, text expected in the problem)
MUTATIONS = [
    ("locations/SE.csv", lambda r: _set(r, 1, "kind", "not_a_kind"), "kind"),
    ("locations/SE.csv", lambda r: _set(r, 2, "first_seen", "yesterday"), "first_seen"),
    ("locations/NO.csv", lambda r: [*r, r[1][:-3]], "Missing Cell"),  # a row cut short
    ("locations/NO.csv", lambda r: [*r, r[1]], "primary key"),  # one listing twice
    ("locations/NO.csv", lambda r: [[*r[0][:-1], "extra"], *r[1:]], "Label"),  # a header that is not the schema's
    ("hsds/services.csv", lambda r: [*r, r[1]], "primary key"),
    ("hsds/services.csv", lambda r: _set(r, 1, "status", "maybe"), "status"),
    ("hsds/phones.csv", lambda r: _set(r, 1, "service_id", "00000000-0000-4000-8000-000000000000"), "foreign key"),
    ("hsds/organizations.csv", lambda r: _set(r, 1, "id", "not-a-uuid"), "id"),
]


def _problems(folder: Path) -> list[str]:
    return table_check.check_package(folder / "datapackage.json", "") + table_check.check_package(
        folder / "hsds" / "datapackage.json", "hsds/"
    )


def _frictionless_valid(folder: Path) -> bool:
    return all(Package(str(folder / d)).validate().valid for d in ("datapackage.json", "hsds/datapackage.json"))


def test_a_sound_release_passes_both(release: Path) -> None:
    assert _problems(release) == []
    assert _frictionless_valid(release)


@pytest.mark.parametrize(("path", "mutate", "expected"), MUTATIONS, ids=[f"{p}-{e}" for p, _, e in MUTATIONS])
def test_each_broken_file_fails_here_as_it_fails_frictionless(release: Path, tmp_path: Path, path, mutate, expected) -> None:
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    (folder / path).chmod(0o644)
    _write(folder / path, mutate(_rows(folder / path)))
    problems = _problems(folder)
    assert not _frictionless_valid(folder)  # the reference agrees the file is broken
    assert any(p.startswith(path + ":") and expected in p for p in problems), problems
    descriptor = folder / ("hsds/datapackage.json" if path.startswith("hsds/") else "datapackage.json")
    assert not table_check.clean_by_columns(descriptor.parent, _files(descriptor))  # (nor told clean a column at a time)


def test_a_problem_names_the_row_of_the_file_that_holds_it(release: Path, tmp_path: Path) -> None:
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    rows = _rows(folder / "locations/SE.csv")
    (folder / "locations/SE.csv").chmod(0o644)
    _write(folder / "locations/SE.csv", _set(rows, len(rows) - 1, "cost", "cheap"))
    (problem,) = _problems(folder)
    assert problem.startswith(f'locations/SE.csv: row {len(rows)}, field cost: Constraint Error: constraint "enum"')


def test_bytes_that_are_not_utf8_are_a_problem(release: Path, tmp_path: Path) -> None:
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    (folder / "locations/NO.csv").chmod(0o644)
    (folder / "locations/NO.csv").write_bytes((folder / "locations/NO.csv").read_bytes() + b"\xff\xfe,\r\n")
    assert [p for p in _problems(folder) if "UTF-8" in p] == [p for p in _problems(folder) if p.startswith("locations/NO.csv")]
    assert any("cannot be read as UTF-8 CSV" in p for p in _problems(folder))


def test_records_of_the_verified_release_are_trusted_only_while_its_file_is_intact(release: Path, tmp_path: Path, monkeypatch) -> None:
    """A record the previous release held passes without Frictionless, unless that release's file no longer matches
    the sha256 it was verified with."""
    import hashlib

    monkeypatch.setattr(table_check, "clean_by_columns", lambda *args: False)  # (row by row: what this counts)
    folder = tmp_path / "new"
    shutil.copytree(release, folder)
    rows = _rows(folder / "locations/SE.csv")
    (folder / "locations/SE.csv").chmod(0o644)
    _write(folder / "locations/SE.csv", _set(rows, 1, "name", "Renamed"))
    sha = {str(p.relative_to(release)): hashlib.sha256(p.read_bytes()).hexdigest() for p in release.rglob("*") if p.is_file()}
    unchanged = frozenset({"datapackage.json", "schema/location.tableschema.json"})
    given: dict[str, list[str]] = {}  # the values judged, by field
    faulted = table_check.faulted

    def spied(schema):
        def judge(name, faults, values):
            given.setdefault(name, []).extend(values)
            return faults(values)

        return {name: functools.partial(judge, name, faults) for name, faults in faulted(schema).items()}

    monkeypatch.setattr(table_check, "faulted", spied)
    assert table_check.check_package(folder / "datapackage.json", "", unchanged, release, sha) == []
    assert given["name"] == ["Renamed"]  # only the record the release before did not hold
    given.clear()
    wrong = {k: "0" * 64 for k in sha}  # the previous files are not what was verified: nothing of them is trusted
    assert table_check.check_package(folder / "datapackage.json", "", unchanged, release, wrong) == []
    assert {r[0] for r in rows[1:]} <= set(given["id"]) and len(given["id"]) == len(set(given["id"]))


def test_files_referencing_a_changed_file_are_examined_when_it_lost_keys(release: Path, tmp_path: Path, monkeypatch) -> None:
    """A service renamed leaves phones.csv's references as they were; a service removed may leave one dangling.
    The changed file is read once as it is and once as it was (its key values kept from those readings)."""
    import hashlib

    monkeypatch.setattr(table_check, "clean_by_columns", lambda *args: False)  # (row by row: what this counts)
    sha = {str(p.relative_to(release)): hashlib.sha256(p.read_bytes()).hexdigest() for p in release.rglob("*") if p.is_file()}
    examined: list[str] = []
    cross_row = table_check._cross_row
    monkeypatch.setattr(table_check, "_cross_row", lambda f, *args: examined.append(f.path) or cross_row(f, *args))
    read: list[tuple[str, ...]] = []  # the header of each file read
    read_records = table_check.read_records

    def reading(data: bytes, **kwargs) -> list[tuple[str, ...]]:
        records = read_records(data, **kwargs)
        read.append(records[0])
        return records

    monkeypatch.setattr(table_check, "read_records", reading)
    services = _rows(release / "hsds/services.csv")
    phones = _rows(release / "hsds/phones.csv")
    phoned = {r[phones[0].index("service_id")] for r in phones[1:]}
    with_phone = next(i for i, r in enumerate(services) if r[0] in phoned)
    for edit, expect_phones_examined in (("rename", False), ("remove", True)):
        folder = tmp_path / edit
        shutil.copytree(release, folder)
        (folder / "hsds/services.csv").chmod(0o644)
        rows = [list(r) for r in services]
        if edit == "rename":
            rows[with_phone][rows[0].index("name")] = "Renamed service"
        else:
            del rows[with_phone]
        _write(folder / "hsds/services.csv", rows)
        unchanged = frozenset(p for p in sha if p != "hsds/services.csv")
        examined.clear(), read.clear()
        problems = table_check.check_package(folder / "hsds" / "datapackage.json", "hsds/", unchanged, release, sha)
        assert read.count(tuple(services[0])) == 2  # services.csv as it is and as it was, once each
        assert ("phones.csv" in examined) is expect_phones_examined, (edit, examined)
        assert "services.csv" in examined
        if edit == "remove":
            assert any(p.startswith("hsds/phones.csv: row") and "foreign key service_id" in p for p in problems), problems
        else:
            assert problems == []


def test_worker_processes_find_what_this_process_finds(release: Path, tmp_path: Path, monkeypatch) -> None:
    """Pieces of records checked in worker processes give the same problems, on the same rows of the same files."""
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    for path, mutate, _ in MUTATIONS[:3] + MUTATIONS[6:8]:
        (folder / path).chmod(0o644)
        _write(folder / path, mutate(_rows(folder / path)))
    monkeypatch.setattr(table_check, "CHUNK", 3)  # pieces of 3 records, so that even this small release is split
    here = _problems(folder)
    with table_check.workers() as pool:
        if pool is None:
            pytest.skip("one CPU: no worker processes")
        given: list[object] = []
        submit = pool.submit
        monkeypatch.setattr(pool, "submit", lambda *a, **kw: given.append(a) or submit(*a, **kw))
        there = table_check.check_package(folder / "datapackage.json", "", pool=pool) + table_check.check_package(
            folder / "hsds" / "datapackage.json", "hsds/", pool=pool
        )
    assert len(given) >= 3  # pieces went to the workers (the column tables of the three wrong cells, at least)
    assert there == here and len(here) >= 5


def _two_files_broken(release: Path, tmp_path: Path) -> Path:
    """A copy of the release with a location file and an HSDS file broken."""
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    for path, mutate, _ in (MUTATIONS[0], MUTATIONS[7]):
        (folder / path).chmod(0o644)
        _write(folder / path, mutate(_rows(folder / path)))
    return folder


def test_with_workers_the_hsds_package_is_checked_in_one_and_what_it_finds_is_reported(release: Path, tmp_path: Path, monkeypatch) -> None:
    """A release's checks with worker processes give the HSDS package to one of them, and this process checks the
    location files beside it, once the listings are let go of (``let_go``), before it waits for the worker: the
    problems are those found without workers, in the same order."""
    folder = _two_files_broken(release, tmp_path)
    here = export.validate_against_schemas(folder)
    steps: list[str] = []

    class Watched(Future):  # the worker's future, whose result this process waits for
        def __init__(self, inner: Future) -> None:
            super().__init__()
            self.inner = inner

        def result(self, timeout=None):  # type: ignore[no-untyped-def]
            steps.append("waited for the HSDS check")
            return self.inner.result(timeout)

    with table_check.workers() as pool:
        if pool is None:
            pytest.skip("one CPU: no worker processes")
        given: list[object] = []
        submit = pool.submit

        def submitting(fn, *a, **kw):
            given.append(fn)
            future = submit(fn, *a, **kw)
            return Watched(future) if fn is table_check.checked_apart else future

        monkeypatch.setattr(pool, "submit", submitting)
        check_package = table_check.check_package

        def checking(descriptor: Path, *a, **kw):
            steps.append(f"checked {descriptor.relative_to(folder)}")
            return check_package(descriptor, *a, **kw)

        monkeypatch.setattr(table_check, "check_package", checking)
        there = export.validate_against_schemas(folder, pool=pool, let_go=lambda: steps.append("let go"))
    assert given.count(table_check.checked_apart) == 1
    assert steps == ["let go", "checked datapackage.json", "waited for the HSDS check"]  # (the HSDS package: in the worker)
    assert any(p.startswith("locations/SE.csv") and "kind" in p for p in here)
    assert any(p.startswith("hsds/phones.csv") and "foreign key" in p for p in here)
    assert there == here


def test_the_location_files_go_to_a_worker_once_the_hsds_check_has_ended(release: Path, tmp_path: Path) -> None:
    """With worker processes, the location files are checked by one of them when the HSDS package's check has ended
    by the time the listings are (its worker's memory let go of), and what it finds is reported; while that check
    goes on, they are checked here, after the listings are let go of. The problems are those found without workers."""
    folder = _two_files_broken(release, tmp_path)
    here = export.validate_against_schemas(folder)
    in_hsds = table_check.check_package(folder / "hsds" / "datapackage.json", "hsds/")
    assert any(p.startswith("locations/SE.csv") for p in here) and in_hsds and set(in_hsds) < set(here)
    ended: Future = Future()
    ended.set_result(in_hsds)
    events: list[str] = []
    assert export.validate_against_schemas(folder, pool=_Inline(events), hsds_check=ended) == here
    assert events == ["submit locations_checked_apart"]
    events.clear()
    planted = ["locations/SE.csv: row 2: planted by the test"]
    answering = _Inline(events, {"locations_checked_apart": planted})
    assert export.validate_against_schemas(folder, pool=answering, hsds_check=ended) == planted + in_hsds
    going_on: Future = Future()
    threading.Timer(0.3, going_on.set_result, [in_hsds]).start()
    steps: list[str] = []
    events.clear()
    assert export.validate_against_schemas(folder, pool=_Inline(events), hsds_check=going_on, let_go=lambda: steps.append("let go")) == here
    assert events == [] and steps == ["let go"]


class _Inline:
    """A pool that runs what it is given at once, here, and keeps what it was given and when (``answers``: what a
    function given answers instead, by its name)."""

    def __init__(self, events: list[str], answers: dict[str, list[str]] | None = None) -> None:
        self.events, self.answers = events, answers or {}

    def submit(self, fn, *args):
        self.events.append(f"submit {fn.__name__}")
        future: Future = Future()
        future.set_result(self.answers[fn.__name__] if fn.__name__ in self.answers else fn(*args))
        return future


def test_verify_starts_the_hsds_check_before_reading_the_files_and_reports_what_it_finds(
    release: Path, tmp_path: Path, monkeypatch
) -> None:
    """``verify`` gives the HSDS package's check to a worker before it reads every file against the manifest (the
    worker checks while this process hashes), once, and the problems that check finds are the release's."""
    import orjson

    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    man = orjson.loads((folder / "manifest.json").read_bytes())
    events: list[str] = []
    matches = export._matches
    monkeypatch.setattr(export, "_matches", lambda path, *a: events.append("read") or matches(path, *a))
    assert export.verify(folder, man, pool=_Inline(events)) == []
    assert events[0] == "submit checked_apart" and events.count("submit checked_apart") == 1
    assert events.count("read") == len(man["files"])
    events.clear()
    planted = ["hsds/phones.csv: row 2: planted by the test"]
    assert export.verify(folder, man, pool=_Inline(events, {"checked_apart": planted})) == planted  # its answer is reported
    events.clear()
    (folder / "listings.json").chmod(0o644)
    (folder / "listings.json").write_bytes(b"[]")
    assert export.verify(folder, man, pool=_Inline(events)) == ["listings.json does not match the manifest"]
    assert events[0] == "submit checked_apart"  # started before the file was found changed


def test_a_release_is_the_same_whether_its_workers_take_the_work_or_refuse_it(tmp_path: Path, monkeypatch) -> None:
    """Worker processes (from PARALLEL_MIN listings) build HSDS and check records; a pool that cannot take work (a
    daemonic process may not start children) leaves it all to this process. The files are the same each way."""
    import contextlib
    from concurrent.futures import Executor

    class Refusing(Executor):
        def submit(self, fn, /, *args, **kwargs):
            raise AssertionError("daemonic processes are not allowed to have children")

    monkeypatch.setattr(export, "PARALLEL_MIN", 0)
    with_workers = export.publish(RICH, tmp_path / "workers", NOW, 14, {})
    monkeypatch.setattr(table_check, "workers", lambda wanted=True: contextlib.nullcontext(Refusing()))
    refused = export.publish(RICH, tmp_path / "refused", NOW, 14, {})
    first = {str(p.relative_to(with_workers.path)): p.read_bytes() for p in with_workers.path.rglob("*") if p.is_file()}
    second = {str(p.relative_to(refused.path)): p.read_bytes() for p in refused.path.rglob("*") if p.is_file()}
    assert first.keys() == second.keys() and len(first) > 40
    assert {k: v for k, v in first.items() if k != "manifest.json"} == {k: v for k, v in second.items() if k != "manifest.json"}


def _schema_of(folder: Path, path: str) -> dict[str, object]:
    package = Package(str(folder / "datapackage.json"))
    return next(r.schema.to_descriptor() for r in package.resources if r.path == path)


@pytest.mark.parametrize(("package", "path"), [("", "locations/SE.csv"), ("hsds", "services.csv"), ("hsds", "phones.csv")])
def test_a_column_at_a_time_finds_what_whole_records_give_frictionless(release: Path, package: str, path: str) -> None:
    """Records of the schema's own header go to Frictionless a column at a time (each distinct value once); every
    problem is the one Frictionless finds in the whole record, at the same row, in the same words."""
    import random

    folder = release / package if package else release
    schema = _schema_of(folder, path)
    header, *rows = (tuple(r) for r in _rows(folder / path))
    wrong = {"kind": "not_a_kind", "first_seen": "yesterday", "status": "maybe", "organization_id": "not-a-uuid", "url": "ftp://x.example/",
             "type": "pager", "service_id": "", "name": "", "last_modified": "2026-13-01T00:00:00Z"}  # fmt: skip
    pick = random.Random(7)
    records = []
    for n in range(300):  # each record a copy of one of the file's, with cells made wrong (the same ones repeat)
        record = list(rows[n % len(rows)])
        record[header.index("id")] = f"{n:08d}-0000-4000-8000-000000000000"
        for column in pick.sample([c for c in wrong if c in header], k=pick.randint(0, 3)):
            record[header.index(column)] = wrong[column]
        records.append(tuple(record))
    records += [records[0][:-2], (*records[1], "extra"), ("",) * len(header)]  # short, long, blank: whole records
    assert len(set(records)) == len(records)  # (as pending records are: distinct)

    def found(column_wise: bool) -> list[tuple[int, str]]:
        f = table_check._File("t", "t.csv", schema)  # type: ignore[arg-type]
        where = {r: (f, n) for n, r in enumerate(records, start=2)}
        if column_wise:
            table_check._validate_records({header: ([f], where)}, schema, None)  # type: ignore[arg-type]
        else:
            table_check._record_errors([f], where, records, True, table_check.frictionless_errors(header, records, schema))  # type: ignore[arg-type]
        return sorted(f.problems, key=lambda p: p[0])

    column_wise, whole = found(True), found(False)
    assert len(whole) > 100 and {n for n, _ in whole} >= {len(records) - 1, len(records), len(records) + 1}
    assert column_wise == whole


def test_a_column_check_that_frictionless_answers_unexpectedly_gives_it_whole_records(release: Path, monkeypatch) -> None:
    """A finding tied to no column of a column table (here, a made-up one) sends the records to Frictionless whole."""
    schema = _schema_of(release, "locations/SE.csv")
    header, *rows = (tuple(r) for r in _rows(release / "locations/SE.csv"))
    bad = _set([list(header), *map(list, rows)], 1, "kind", "not_a_kind")[1:]
    records = [tuple(r) for r in bad]
    real, calls = table_check.frictionless_errors, []

    def odd(h, recs, s):
        calls.append(h)
        found = real(h, recs, s)
        return [*found, (None, "", "something about the table")] if table_check.SPARE in h else found

    monkeypatch.setattr(table_check, "frictionless_errors", odd)
    f = table_check._File("t", "t.csv", schema)  # type: ignore[arg-type]
    table_check._validate_records({header: ([f], {r: (f, n) for n, r in enumerate(records, start=2)})}, schema, None)  # type: ignore[arg-type]
    assert any(table_check.SPARE in h for h in calls) and calls[-1] == header  # column tables, then whole records
    assert [n for n, _ in f.problems] == [2] and "kind" in f.problems[0][1]


#: fields of each kind the release's schemas use (and a few they could), with a schema-level missing value
FIELDS = [
    {"name": "id", "type": "string", "format": "uuid", "constraints": {"required": True}},
    {"name": "ref", "type": "string", "format": "uuid"},
    {"name": "short", "type": "string", "constraints": {"maxLength": 8, "minLength": 2}},
    {"name": "kind", "type": "string", "constraints": {"enum": ["chat", "forum"], "required": True}},
    {"name": "code", "type": "string", "constraints": {"pattern": "[A-Z]{2}(-[A-Z0-9]{1,3})?"}},
    {"name": "web", "type": "string", "format": "uri"},
    {"name": "when", "type": "datetime"},
    {"name": "day", "type": "date"},
    {"name": "open", "type": "boolean", "trueValues": ["true"], "falseValues": ["false"]},
    {"name": "n", "type": "integer", "constraints": {"minimum": 0}},
    {"name": "text", "type": "string"},  # any string (no reader is called: ``_plain``)
    {"name": "must", "type": "string", "constraints": {"required": True}},
    {"name": "dash", "type": "string", "format": "default", "missingValues": ["-"], "constraints": {"required": True}},
    {"name": "link", "type": "string", "format": "uri", "constraints": {"required": True}},
    {"name": "mail", "type": "string", "format": "email"},
]
#: addresses at the bounds of ``SURE["email"]`` (lengths of the local part, a label and the domain), inside and out
EMAIL_BOUNDS = [
    "a@b.example",
    "a.b+c@x-y.example",
    f"{'a' * 64}@x.example",
    f"{'a' * 65}@x.example",
    f"a@{'b' * 63}.example",
    f"a@{'b' * 64}.example",
    f"a@{'b.' * 123}example",
    f"a@{'b.' * 124}example",
    "a..b@x.example",
    "a@x.e1",
]
CELLS = st.one_of(
    st.from_regex(table_check.SURE["uuid"], fullmatch=True),
    st.from_regex(table_check.SURE["uri"], fullmatch=True),
    st.from_regex(table_check.SURE["email"], fullmatch=True),
    st.sampled_from(EMAIL_BOUNDS),
    st.sampled_from(
        [
            "http://a.example/?q=1&r=%zz#top",
            "https://user:pw@x.example/",
            "https://user@x.example/",
            "http://x.example:99999/",
            "https://x.example/a b",
            "https://x.example/ä",
            "mailto:x@y.example",
            "//x.example/",
            "https:",
            "http://",
        ]
    ),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),  # uuid accepts these too
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: f"{{{u}}}"),
    st.uuids().map(lambda u: f"urn:uuid:{u}"),
    st.uuids().map(lambda u: f" {u}"),
    st.uuids().map(lambda u: f"{u}\n"),
    st.sampled_from(
        [
            "",
            "NA",
            "chat",
            "forum",
            "NO",
            "NO-03",
            "no",
            "https://x.example/a",
            "ftp://x.example/",
            "true",
            "false",
            "2026-01-02",
            "2026-13-01",
            "2026-01-02T03:04:05Z",
            "-1",
            "12",
            "x" * 9,
            "-",
            " ",
            "x@y.example",
            "x@y",
        ]
    ),
    st.text(max_size=12),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(CELLS, min_size=1, max_size=25, unique=True))
def test_the_values_faulted_are_those_frictionless_flags(values: list[str]) -> None:
    """``faulted`` (Frictionless's own cell readers; a UUID or URL its format surely accepts, ``SURE``, judged without
    the format) leaves out exactly the values that Frictionless's whole validation finds nothing wrong with, in every
    kind of field."""
    schema = {"fields": [*FIELDS, {"name": table_check.SPARE, "type": "string"}], "missingValues": ["", "NA"]}
    faults = table_check.faulted(schema)
    header = tuple(str(f["name"]) for f in schema["fields"])
    records = [(*(v,) * len(FIELDS), table_check.SPARE_VALUE) for v in values]  # each value in every field
    flagged: dict[str, set[str]] = {}
    for number, cell, _ in table_check.frictionless_errors(header, records, schema):
        assert number is not None
        flagged.setdefault(cell, set()).add(values[number - 2])
    for f in FIELDS:
        assert set(faults[str(f["name"])](values)) == flagged.get(str(f["name"]), set()), f["name"]


def _whole_text_records(data: bytes) -> list[tuple[str, ...]]:
    return [tuple(r) for r in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))]


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list('ab,"\r\n é\u2028\x0c\x85')), max_size=60),
    piece=st.integers(min_value=1, max_value=12),
)
def test_records_read_a_piece_at_a_time_are_those_of_the_whole_text(text: str, piece: int) -> None:
    """Line breaks of every kind, quoted cells across lines, characters of several bytes, pieces of any size: the
    records (or the csv error) are those of one StringIO over the whole text."""
    data = text.encode("utf-8")
    try:
        expected: object = _whole_text_records(data)
    except csv.Error as exc:
        expected = ("csv.Error", str(exc))
    try:
        got: object = table_check.read_records(data, piece)
    except csv.Error as exc:
        got = ("csv.Error", str(exc))
    assert got == expected


def test_a_file_read_in_pieces_that_is_not_utf8_fails_as_the_whole_text_does() -> None:
    data = b"id,name\r\n" + b"1,fine\r\n" * 50 + b"2,caf\xe9\r\n"
    with pytest.raises(UnicodeDecodeError) as whole:
        data.decode("utf-8")
    with pytest.raises(UnicodeDecodeError) as pieces:
        table_check.read_records(data, 16)
    assert str(pieces.value) == str(whole.value)  # the position in the file, not in the piece
    assert table_check.read_records(data[:-9], 16) == _whole_text_records(data[:-9])


def test_records_equal_to_ones_already_held_are_those_objects() -> None:
    before = table_check.read_records(b"id,name\r\n1,a\r\n2,b\r\n")
    same = dict(zip(before, before, strict=True))
    after = table_check.read_records(b"id,name\r\n1,a\r\n2,B\r\n", same=same)
    assert after == [("id", "name"), ("1", "a"), ("2", "B")]
    assert after[0] is before[0] and after[1] is before[1] and after[2] is not before[2]


def test_pieces_are_made_in_turn_and_their_results_kept_in_order() -> None:
    """No more than one piece beyond the workers' waits with its arguments made; each result is its piece's, in order;
    a pool that refuses work leaves each piece's error in its future (the caller then does it itself)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    made: list[int] = []
    release = threading.Event()

    def make(i: int) -> tuple[int]:
        made.append(i)
        return (i,)

    def work(i: int) -> int:
        release.wait(10)
        return i * i

    assert table_check.submitted_in_turn(None, work, [functools.partial(make, i) for i in range(3)]) == [None] * 3
    with ThreadPoolExecutor(2) as pool:
        futures = table_check.submitted_in_turn(pool, work, [functools.partial(make, i) for i in range(8)])
        assert made == [0, 1, 2]  # two at work, one waiting
        release.set()
        assert [f.result(10) for f in futures] == [i * i for i in range(8)]  # type: ignore[union-attr]
        assert made == list(range(8))

    class Refusing(ThreadPoolExecutor):
        def submit(self, *args, **kwargs):  # type: ignore[override]
            raise RuntimeError("broken")

    with Refusing(2) as pool:
        futures = table_check.submitted_in_turn(pool, work, [functools.partial(make, i) for i in range(4)])
        assert all(isinstance(f.exception(1), RuntimeError) for f in futures)  # type: ignore[union-attr]


def test_pieces_are_not_held_once_sent_nor_their_results_once_let_go_of() -> None:
    """``submitted_in_turn`` holds no piece's ``make`` (what it makes its arguments from: a release's listings) once
    the piece is sent, and no result once the caller lets go of its futures, while the pool lives on (it keeps its
    last work items and their callbacks): at 535k listings, a release held them all through its checks (1.4 GB)."""
    import gc
    import weakref
    from concurrent.futures import ThreadPoolExecutor

    class Big:  # what a piece is made from, and what it gives
        def __init__(self, i: int) -> None:
            self.i = i

    sources = [Big(i) for i in range(6)]
    made_from = [weakref.ref(x) for x in sources]
    results: list[weakref.ref[Big]] = []

    def work(i: int) -> Big:
        out = Big(i * i)
        results.append(weakref.ref(out))
        return out

    was = gc.isenabled()
    gc.disable()  # (a release is built and checked with the collector held off: nothing may rest on it)
    try:
        with ThreadPoolExecutor(2) as pool:
            futures = table_check.submitted_in_turn(pool, work, [functools.partial(lambda x: (x.i,), x) for x in sources])
            del sources
            assert [f.result(10).i for f in futures] == [i * i for i in range(6)]  # type: ignore[union-attr]
            assert all(ref() is None for ref in made_from)
            del futures
            assert len(results) == 6 and all(ref() is None for ref in results)
    finally:
        if was:
            gc.enable()


def test_only_a_field_that_takes_any_string_is_judged_without_its_reader() -> None:
    """``_plain``: a string field with no format and no constraint but ``required`` (its missing values, the field's
    own or else the schema's); any other field, or a reader that judges the probes otherwise, keeps its reader."""
    from frictionless import Schema

    schema = Schema.from_descriptor(
        {
            "fields": [
                {"name": "a", "type": "string"},
                {"name": "b", "type": "string", "constraints": {"required": True}, "missingValues": ["-"]},
                {"name": "c", "type": "string", "constraints": {"pattern": "x+"}},
                {"name": "d", "type": "string", "constraints": {"enum": ["x"]}},
                {"name": "e", "type": "string", "format": "uri"},
                {"name": "f", "type": "integer"},
            ],
            "missingValues": ["", "NA"],
        }
    )
    a, b, c, d, e, f = schema.fields
    assert table_check._plain(a, a.create_cell_reader()) == {"", "NA"}
    assert table_check._plain(b, b.create_cell_reader()) == {"-"}
    assert all(table_check._plain(x, x.create_cell_reader()) is None for x in (c, d, e, f))
    read = a.create_cell_reader()
    assert table_check._plain(a, lambda v: (None, {"type": "x"}) if v == "ä" else read(v)) is None  # a reader judging otherwise
    assert table_check._missing_faults(frozenset({"-"}), ["x", "-", "", "NA"]) == ["-"]
    assert table_check._missing_faults(frozenset(), ["x", "-", ""]) == []


KEY_CELLS = st.sampled_from(["a", "b", "c"])  # few values: keys repeat often
CELLS_OR_MISSING = st.sampled_from(["a", "b", "c", ""])


@settings(max_examples=40, deadline=None)
@example(parents=[("a", "")], children=[("a", "a", "c", "b", ""), ("b", "a", "c", "a", "")])  # keys apart, unique field repeated
@example(parents=[("a", "b")], children=[("a", "a", "", "a", "b"), ("a", "a", "", "a", "c")])  # key repeated, a pair not in parent
@given(
    parents=st.lists(st.tuples(KEY_CELLS, CELLS_OR_MISSING), max_size=5),
    children=st.lists(st.tuples(KEY_CELLS, KEY_CELLS, CELLS_OR_MISSING, CELLS_OR_MISSING, CELLS_OR_MISSING), max_size=8),
)
def test_keys_over_rows_are_found_where_frictionless_finds_them(parents, children, tmp_path_factory) -> None:
    """Primary keys of one column and of two, a unique field and foreign keys (to another file, of one column and of
    two; missing values allowed) over the rows: the rows each check finds are those Frictionless finds with that
    check.  (A key's missing cell is a required field's problem here, a primary key's there: not generated.)"""
    folder = tmp_path_factory.mktemp("keys")
    child_fields = [{"name": n, "type": "string"} for n in ("a", "b", "u", "p", "q")]
    descriptor = {
        "name": "keys",
        "resources": [
            {"name": "parent", "path": "parent.csv",
             "schema": {"fields": [{"name": "id", "type": "string"}, {"name": "id2", "type": "string"}], "primaryKey": ["id"]}},
            {"name": "child", "path": "child.csv", "schema": {
                "fields": [{**f, "constraints": {"unique": True}} if f["name"] == "u" else f for f in child_fields],
                "primaryKey": ["a", "b"],
                "foreignKeys": [{"fields": ["p"], "reference": {"resource": "parent", "fields": ["id"]}},
                                {"fields": ["p", "q"], "reference": {"resource": "parent", "fields": ["id", "id2"]}}]}},
        ],
    }  # fmt: skip
    (folder / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    _write(folder / "parent.csv", [["id", "id2"], *map(list, parents)])
    _write(folder / "child.csv", [["a", "b", "u", "p", "q"], *map(list, children)])
    kinds = {"primary key": "primary-key", "unique field": "unique-error", "foreign key": "foreign-key"}
    report = Package(str(folder / "datapackage.json")).validate()
    theirs = {(t.name, e.type, e.row_number) for t in report.tasks for e in t.errors if e.type in kinds.values()}
    ours = set()
    with mock.patch.object(table_check, "SHOWN", 100):  # (every problem, not the first few of a file)
        found = table_check.check_package(folder / "datapackage.json", "")
    for p in found:
        path, _, text = p.partition(": row ")
        number, _, rest = text.partition(": ")
        kind = next((k for k in kinds if rest.startswith(k)), None)
        if kind is not None:
            ours.add((path.removesuffix(".csv"), kinds[kind], int(number)))
    assert ours == theirs


def _files(descriptor: Path) -> dict[str, table_check._File]:
    package = Package(str(descriptor))
    return {r.name: table_check._File(r.name, str(r.path), r.schema.to_descriptor()) for r in package.resources if r.path and r.schema}


def test_a_sound_release_is_told_clean_a_column_at_a_time(release: Path) -> None:
    """The location files and the HSDS package of a sound release pass every check at once, in Arrow: they are not
    read row by row."""
    for descriptor in (release / "datapackage.json", release / "hsds" / "datapackage.json"):
        assert table_check.clean_by_columns(descriptor.parent, _files(descriptor))
    with mock.patch.object(table_check, "_validate_records", side_effect=AssertionError("read row by row")):
        assert _problems(release) == []


#: a cell of the generated tables below: sound values of each field, faulty ones, and bytes that part or quote cells
NOISY_CELLS = st.one_of(
    st.sampled_from(["", "NA", "a", "b", "x y", "12", "-3", "1.5", "2026-01-02", "02/01/2026", "true"]),
    st.sampled_from(["3f2b8c1e-0d4a-4e6b-9c7d-1a2b3c4d5e6f", "3F2B8C1E-0D4A-4E6B-9C7D-1A2B3C4D5E6F", "3f2b8c1e0d4a4e6b9c7d1a2b3c4d5e6f"]),
    st.sampled_from(["https://help.example/a?b=c", "http://x.example", "ftp://x.example", "https://user:pw@x.example", "help.example"]),
    st.sampled_from(["help@line.example", "a.b@line.example", "not an address", "@line.example"]),
    st.text(alphabet=st.sampled_from(['"', ",", "\r", "\n", "a", " ", "\ufeff", "\x00", "\u00e9"]), max_size=4),
)
TABLE_ROWS = st.lists(st.lists(NOISY_CELLS, min_size=3, max_size=5), max_size=6)


def _noisy_csv(header: list[str], rows: list[list[str]], quoted: bool, blank_line: bool, bom: bool) -> bytes:
    """The rows as a CSV file: quoted as the ``csv`` module quotes, or joined as they are (cells that then part or
    quote otherwise); with an empty line among them, or a byte-order mark, when asked."""
    if quoted:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows([header, *rows])
        text = buf.getvalue()
    else:
        text = "".join(",".join(r) + "\r\n" for r in [header, *rows])
    if blank_line:
        lines = text.split("\r\n")
        text = "\r\n".join([*lines[:2], "", *lines[2:]])
    return ("\ufeff" if bom else "").encode() + text.encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(
    parents=TABLE_ROWS,
    children=TABLE_ROWS,
    shape=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    sound=st.booleans(),
    poke=st.none() | st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 4), NOISY_CELLS),
)
def test_a_package_told_clean_a_column_at_a_time_is_clean_row_by_row(parents, children, shape, sound, poke, tmp_path_factory) -> None:
    """Whatever a package's files hold (faulty values of each type and format, keys that repeat or are not found,
    quotes and line breaks that part cells otherwise, empty lines, a byte-order mark, NUL bytes), a package that
    ``clean_by_columns`` passes is one the checks row by row find nothing wrong with, and ``check_package`` finds
    what they find.  Half the packages are made of sound values, so that both answers are tried, and some of those
    then get one cell of any kind (``poke``), or the shape of a noisy file."""
    if sound:  # keys that are found, values each field takes
        ids = [f"3f2b8c1e-0d4a-4e6b-9c7d-1a2b3c4d5{n:03d}" for n in range(len(parents))]
        parents = [[i, "Line", "https://help.example/a", "12"][: 3 + len(r) % 2] for i, r in zip(ids, parents, strict=True)]
        children = [[f"c{n}", ids[n % len(ids)] if ids else "", "help@line.example", f"t{n}", "2026-01-02"][: 3 + len(r) % 3]
                    for n, r in enumerate(children)]  # fmt: skip
        if poke is not None and (rows := children if poke[0] else parents):
            rows[poke[1] % len(rows)][poke[2] % len(rows[poke[1] % len(rows)])] = poke[3]
    folder = tmp_path_factory.mktemp("noisy")
    parent_fields = [{"name": "id", "type": "string", "format": "uuid", "constraints": {"required": True}},
                     {"name": "name", "type": "string", "constraints": {"required": True}},
                     {"name": "url", "type": "string", "format": "uri"}, {"name": "n", "type": "integer"}]  # fmt: skip
    child_fields = [{"name": "id", "type": "string"}, {"name": "parent_id", "type": "string"},
                    {"name": "email", "type": "string", "format": "email"},
                    {"name": "tag", "type": "string", "constraints": {"unique": True}}, {"name": "d", "type": "date"}]  # fmt: skip
    width = {"parent": 3 + len(parents) % 2, "child": 3 + len(children) % 3}
    descriptor = {
        "name": "noisy",
        "resources": [
            {"name": "parent", "path": "parent.csv", "schema": {"fields": parent_fields[: width["parent"]], "primaryKey": ["id"]}},
            {"name": "child", "path": "child.csv", "schema": {
                "fields": child_fields[: width["child"]], "primaryKey": ["id"],
                "foreignKeys": [{"fields": ["parent_id"], "reference": {"resource": "parent", "fields": ["id"]}}]}},
        ],
    }  # fmt: skip
    quoted, blank_line, bom, short = (True, False, False, False) if sound and poke is None else shape
    (folder / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    for name, rows in (("parent", parents), ("child", children)):
        fields = [f["name"] for f in descriptor["resources"][name == "child"]["schema"]["fields"]]
        rows = [r[: len(fields) - (short and n == 0)] + [""] * (len(fields) - len(r)) for n, r in enumerate(rows)]
        (folder / f"{name}.csv").write_bytes(_noisy_csv(fields, rows, quoted, blank_line and name == "child", bom and name == "parent"))
    files = _files(folder / "datapackage.json")
    with mock.patch.object(table_check, "clean_by_columns", lambda *args: False):
        row_by_row = table_check.check_package(folder / "datapackage.json", "")
    clean = table_check.clean_by_columns(folder, files)
    event(f"told clean: {clean}, sound: {not row_by_row}")  # (both answers are given: see --hypothesis-show-statistics)
    if clean:
        assert row_by_row == []
    assert table_check.check_package(folder / "datapackage.json", "") == row_by_row


def test_a_rerun_tells_clean_a_column_at_a_time_only_the_files_that_changed_and_those_they_touch(
    release: Path, tmp_path: Path, monkeypatch
) -> None:
    """When the package is the verified release's, the files that changed are read in Arrow, with those referencing
    them and those they reference (for their keys); a clean rerun is not read row by row, and a broken one is."""
    import hashlib

    sha = {str(p.relative_to(release)): hashlib.sha256(p.read_bytes()).hexdigest() for p in release.rglob("*") if p.is_file()}
    folder = tmp_path / "new"
    shutil.copytree(release, folder)
    for path in ("locations/SE.csv", "hsds/taxonomy_terms.csv"):
        (folder / path).chmod(0o644)
        rows = _rows(folder / path)
        _write(folder / path, rows[:1] + rows[1:][::-1])  # the same rows, in another order: changed bytes, sound
    unchanged = frozenset(p for p in sha if p not in ("locations/SE.csv", "hsds/taxonomy_terms.csv"))
    read: list[str] = []
    clean = table_check.clean_by_columns
    monkeypatch.setattr(
        table_check,
        "clean_by_columns",
        lambda folder, files, examined=None: read.append(sorted(files[n].path for n in examined)) or clean(folder, files, examined),
    )
    monkeypatch.setattr(table_check, "_validate_records", mock.Mock(side_effect=AssertionError("read row by row")))
    assert table_check.check_package(folder / "datapackage.json", "", unchanged, release, sha) == []
    assert table_check.check_package(folder / "hsds" / "datapackage.json", "hsds/", unchanged, release, sha) == []
    assert read[0] == ["locations/SE.csv"]
    assert "taxonomy_terms.csv" in read[1] and "attributes.csv" in read[1] and "services.csv" not in read[1]  # (attributes refer to it)
    monkeypatch.undo()
    _write(folder / "locations/SE.csv", _set(_rows(folder / "locations/SE.csv"), 1, "kind", "not_a_kind"))
    (problem,) = table_check.check_package(folder / "datapackage.json", "", unchanged, release, sha)
    assert problem.startswith("locations/SE.csv: row 2, field kind")


def test_a_worker_warmed_for_a_check_has_imported_what_the_check_needs(monkeypatch):
    """``warmed`` hands a worker the imports of a package's check (none without a pool); they import here too."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    assert table_check.warmed(None) is None
    monkeypatch.delitem(sys.modules, "pyarrow.csv", raising=False)
    with ThreadPoolExecutor(1) as pool:
        warm = table_check.warmed(pool)
        assert warm is not None and warm.result() is None
    assert "frictionless" in sys.modules and "pyarrow.csv" in sys.modules
