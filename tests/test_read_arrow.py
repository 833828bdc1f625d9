"""Arrow's CSV reader (``read_by_arrow``) reads every file it accepts exactly as ``csv.reader`` does (``read_by_csv``)."""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.read import ROW, WHITESPACE, read_by_arrow, read_by_csv, read_table

#: the characters that make CSV hard: delimiters, quotes, line ends, Python-only whitespace, non-ASCII
TRICKY = ["a", "b", "1", ",", ";", '"', '""', "\n", "\r", "\r\n", " ", "\t", "\x1c", "\xa0", "\u3000", "é", "€", "😀"]


def _same(data: bytes, delimiter: str = ",") -> bool:
    """Asserts the two readers agree when Arrow reads the file; True when it did."""
    fast = read_by_arrow(data, "utf-8", delimiter)
    if fast is None:
        return False
    slow = read_by_csv(data.decode("utf-8"), "utf-8", delimiter)
    assert fast.empty == slow.empty and fast.header == slow.header and fast.error == slow.error == ""
    if slow.frame is None:
        assert fast.frame is None
    else:
        assert fast.frame is not None
        pd.testing.assert_frame_equal(fast.frame, slow.frame)
        assert all(isinstance(v, str) for c in fast.frame.columns if c != ROW for v in fast.frame[c])
    return True


cell = st.lists(st.sampled_from(TRICKY), max_size=5).map("".join)
quoted = cell.map(lambda s: '"' + s.replace('"', '""') + '"')


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    width = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(st.one_of(cell, quoted), min_size=width, max_size=width), min_size=1, max_size=6))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return (end.join(",".join(r) for r in rows) + draw(st.sampled_from(["", end, end + end]))).encode()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_arrow_reads_any_file_it_accepts_as_csv_reader_does(data: bytes) -> None:
    _same(data)


@pytest.mark.parametrize(
    "data",
    [
        b"name,kind\nA,b\n",
        b'name,kind\n"x""y",2\n"multi\nline",3\n"a\r\nb",4\n',
        b'name,kind\n"x"z,2\nx"y,3\n"a"b"c,4\n',  # stray quotes, kept as csv keeps them
        b"name,kind\n\n\nA,b\n,\n \t,\xc2\xa0\nB,c\n",  # blank rows in between: dropped, rows still counted
        b"name,,kind\nA,,b\n",  # a column empty in the header and every row is dropped
        b"name,name,\nA,B,C\n",  # repeated and blank header names
        b"2024,1\n7,8\n",  # numbers stay strings
        b"name\n\nA\n",  # one column, blank line
        b",\n,\n",  # nothing but blanks
        b"name,kind\n",  # a header alone
    ],
)
def test_arrow_reads_edge_cases_as_csv_reader_does(data: bytes) -> None:
    assert _same(data)


@pytest.mark.parametrize(
    "data",
    [
        b"name,kind\nA\n",  # a short row
        b"name,kind\nA,b,c\n",  # a long row
        b"name,kind\n \nA,b\n",  # a line of a space in a file of two columns
        b'name,kind\n"unclosed,b\n',
        b"name,kind\nA\x00,b\n",  # (refused as binary before either reads it)
        b"\n\nname,kind\nA,b\n",  # blank lines before the header, narrower than it
    ],
)
def test_arrow_leaves_what_it_might_read_differently_to_csv_reader(data: bytes) -> None:
    assert read_by_arrow(data, "utf-8", ",") is None
    assert read_table(data, ".csv").frame is not None or b"\x00" in data  # csv.reader reads it


@pytest.fixture
def csv_limit() -> Iterator[int]:
    """``csv``'s own field size limit (131,072) for one test: importing Frictionless's CSV parser raises it to 2**31 for
    the whole process, and a cell over that limit would take gigabytes."""
    before = csv.field_size_limit(131_072)
    try:
        yield csv.field_size_limit()
    finally:
        csv.field_size_limit(before)


def test_a_cell_over_csv_size_limit_is_left_to_csv_reader_which_refuses_it(csv_limit: int) -> None:
    big = b"name,kind\n" + b"A" * (csv_limit + 1) + b",b\n"
    assert read_by_arrow(big, "utf-8", ",") is None
    assert "not valid CSV" in read_table(big, ".csv").error


def test_whitespace_is_pythons() -> None:
    assert sorted(WHITESPACE) == sorted(c for c in map(chr, range(0x110000)) if c.isspace())
    for c in WHITESPACE:  # a row of one of them alone is blank for both readers
        assert _same(f"name,kind\nA,b\n{c},{c}\n".encode()) or c in "\r\n\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029"


def test_other_encodings_and_delimiters_go_through_arrow_too() -> None:
    assert _same("name;kind\nCafé;b\n".encode(), ";")
    table = read_table("name;kind\nCafé;b\n".encode("cp1252"), ".csv")
    assert table.encoding == "cp1252" and table.frame is not None and table.frame["name"].tolist() == ["Café"]
    table = read_table("\ufeffname\tkind\nA\tb\n".encode("utf-16"), ".tsv")
    assert table.encoding == "utf-16" and table.frame is not None and table.frame["kind"].tolist() == ["b"]


LINE_PARTS = ["", " ", "\t", "a,b", "a;b;c", "x\ty", "\u2028", "\r", "\n", "\r\n", "é|ü|ö"]


@given(st.lists(st.sampled_from(LINE_PARTS), max_size=12), st.integers(1, 12))
def test_the_delimiter_is_sniffed_from_the_first_filled_line_whatever_the_prefix(parts: list[str], prefix: int) -> None:
    from curate.read import _first_filled_line

    text = "".join(parts)
    assert _first_filled_line(text, prefix) == next((line for line in text.splitlines() if line.strip()), "")


def test_a_file_of_whitespace_is_empty() -> None:
    assert read_table(b" \r\n\t\n", ".csv").empty
    assert read_table(b"", ".csv").empty
    assert not read_table(b" \na\nb\n", ".csv").empty
