"""Tests of ``curate.read``: bytes in, a table of strings out."""

from __future__ import annotations

import pytest

from curate.read import ROW, decode, read_table


def records(data: bytes, suffix: str = ".csv") -> list[dict[str, object]]:
    table = read_table(data, suffix)
    assert table.error == "" and table.frame is not None
    return table.frame.to_dict("records")


# --- encodings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("name;city\nTromsø;Zürich\n".encode(), "utf-8"),
        ("\ufeffname;city\nTromsø;Zürich\n".encode(), "utf-8-sig"),
        ("name;city\nTromsø;Zürich\n".encode("utf-8-sig"), "utf-8-sig"),
        ("\ufeffname;city\r\nTromsø;Zürich\r\n".encode("utf-16-le"), "utf-16"),  # as Excel writes "Unicode text"
        ("name;city\nTromsø;Zürich\n".encode("utf-16"), "utf-16"),
        ("\ufeffname;city\nTromsø;Zürich\n".encode("utf-16-be"), "utf-16"),
        ("name;city\nTromsø;Zürich\n".encode("cp1252"), "cp1252"),
        ("name;city\nTromsø;Zürich\n".encode("latin-1"), "cp1252"),
    ],
)
def test_encodings_are_decoded_right(data, encoding):
    table = read_table(data, ".csv")
    assert table.encoding == encoding
    assert table.header == ["name", "city"]  # no BOM left on the first header
    assert table.frame is not None
    assert table.frame.to_dict("records") == [{"name": "Tromsø", "city": "Zürich", ROW: 2}]


def test_cp1252_only_characters():
    data = "name;description\nCafé;“quoted” – 5 €\n".encode("cp1252")
    assert records(data) == [{"name": "Café", "description": "“quoted” – 5 €", ROW: 2}]


@pytest.mark.parametrize(
    ("data", "text", "encoding"),
    [
        (b"abc", "abc", "utf-8"),
        ("Tromsø".encode(), "Tromsø", "utf-8"),
        (b"\xef\xbb\xbfabc", "abc", "utf-8-sig"),
        ("Tromsø".encode("utf-16"), "Tromsø", "utf-16"),
        ("Tromsø".encode("cp1252"), "Tromsø", "cp1252"),
        (b"\x80 \x93x\x94", "€ “x”", "cp1252"),
    ],
)
def test_decode(data, text, encoding):
    assert decode(data) == (text, encoding)


def test_decode_refuses_binary():
    with pytest.raises(UnicodeError):
        decode(b"PK\x03\x04\x00\x00binary")


# --- delimiters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "delimiter"),
    [
        (b'name,kind,url\n"A, B",helpline,https://a.example\n', ","),
        (b"name;kind;url\nA, B;helpline;https://a.example\n", ";"),
        (b"name\tkind\turl\nA, B\thelpline\thttps://a.example\n", "\t"),
        (b"name|kind|url\nA, B|helpline|https://a.example\n", "|"),
    ],
)
def test_delimiter_is_sniffed(data, delimiter):
    table = read_table(data, ".csv")
    assert table.delimiter == delimiter
    assert table.header == ["name", "kind", "url"]
    assert records(data) == [{"name": "A, B", "kind": "helpline", "url": "https://a.example", ROW: 2}]


def test_sniffing_skips_blank_leading_lines():
    table = read_table(b"\n\nname;kind\nA;b\n", ".csv")
    assert table.delimiter == ";"
    assert table.frame is not None and table.frame.to_dict("records") == [{"name": "A", "kind": "b", ROW: 4}]


def test_tsv_suffix_forces_tab():
    table = read_table(b"name,kind\tcountry\nA,B\tNO\n", ".tsv")
    assert table.delimiter == "\t"
    assert table.header == ["name,kind", "country"]
    assert table.frame is not None and table.frame.to_dict("records") == [{"name,kind": "A,B", "country": "NO", ROW: 2}]


def test_single_column_defaults_to_comma():
    table = read_table(b"name\nA\n", ".csv")
    assert table.delimiter == ","
    assert table.frame is not None and table.frame.to_dict("records") == [{"name": "A", ROW: 2}]


# --- rows and columns -------------------------------------------------------------------------


def test_quoted_newline_stays_in_its_cell_and_row_numbers_count_records():
    data = b'name,description\nA,"line one\nline two"\nB,x\n'
    assert records(data) == [
        {"name": "A", "description": "line one\nline two", ROW: 2},
        {"name": "B", "description": "x", ROW: 3},
    ]


def test_crlf_line_endings():
    assert records(b"name,kind\r\nA,b\r\nC,d\r\n") == [{"name": "A", "kind": "b", ROW: 2}, {"name": "C", "kind": "d", ROW: 3}]


def test_empty_rows_and_trailing_empty_columns_are_dropped_but_rows_keep_their_number():
    data = b"name,kind,,\nA,b,,\n,,,\n\n  ,\t,,\nC,d,,\n"
    table = read_table(data, ".csv")
    assert table.header == ["name", "kind"]
    assert table.frame is not None
    assert list(table.frame.columns) == ["name", "kind", ROW]
    assert table.frame.to_dict("records") == [{"name": "A", "kind": "b", ROW: 2}, {"name": "C", "kind": "d", ROW: 6}]


def test_empty_column_in_the_middle_is_dropped():
    assert records(b"name,,kind\nA,,b\n") == [{"name": "A", "kind": "b", ROW: 2}]


def test_column_without_header_but_with_values_is_kept_and_named():
    table = read_table(b"name,\nA,x\n", ".csv")
    assert table.header == ["name", "column_2"]
    assert table.frame is not None and table.frame.to_dict("records") == [{"name": "A", "column_2": "x", ROW: 2}]


def test_header_after_leading_empty_rows():
    assert records(b",,\n,,\nname,kind\nA,b\n") == [{"name": "A", "kind": "b", ROW: 4}]


def test_duplicate_header_names_are_made_unique():
    table = read_table(b"name,name,Name,name\n1,2,3,4\n", ".csv")
    assert table.header == ["name", "name (2)", "Name", "name (3)"]
    assert table.frame is not None
    assert table.frame.to_dict("records") == [{"name": "1", "name (2)": "2", "Name": "3", "name (3)": "4", ROW: 2}]


@pytest.mark.parametrize(
    "header",
    [
        b"name,name (2),name",  # the second 'name' must not become a second 'name (2)'
        b"name,,column_2",  # the unnamed column must not collide with a header written 'column_2'
    ],
)
def test_unique_header_names_never_collide_with_written_ones(header):
    table = read_table(header + b"\n1,2,3\n", ".csv")
    assert table.frame is not None
    assert len(set(table.header)) == 3, table.header
    assert list(table.frame.columns) == [*table.header, ROW]
    assert table.frame.iloc[0].tolist() == ["1", "2", "3", 2]


def test_short_rows_are_padded_with_empty_strings():
    assert records(b"name,kind,url\nA\nB,c\n") == [
        {"name": "A", "kind": "", "url": "", ROW: 2},
        {"name": "B", "kind": "c", "url": "", ROW: 3},
    ]


def test_long_rows_get_a_named_column():
    table = read_table(b"name,kind\nA,b,extra\n", ".csv")
    assert table.header == ["name", "kind", "column_3"]
    assert table.frame is not None and table.frame.to_dict("records") == [{"name": "A", "kind": "b", "column_3": "extra", ROW: 2}]


def test_cells_stay_strings_exactly_as_written():
    data = (
        b'name,phone,id,flag,missing,date,empty\n 007 , +47 22 40 00 40 ,1e3,TRUE,NA,01/02/2025,""\nnull,0047,00123,false,N/A,2025-06-30,\n'
    )
    table = read_table(data, ".csv")
    assert table.frame is not None
    assert table.frame.drop(columns=ROW).to_dict("records") == [
        {"name": " 007 ", "phone": " +47 22 40 00 40 ", "id": "1e3", "flag": "TRUE", "missing": "NA", "date": "01/02/2025", "empty": ""},
        {"name": "null", "phone": "0047", "id": "00123", "flag": "false", "missing": "N/A", "date": "2025-06-30", "empty": ""},
    ]
    assert all(isinstance(v, str) for v in table.frame.drop(columns=ROW).to_numpy().ravel())
    assert table.frame[ROW].tolist() == [2, 3]


def test_markup_is_kept_as_written():
    assert records(b"name\n<b>A</b> &amp; B\n") == [{"name": "<b>A</b> &amp; B", ROW: 2}]


# --- empty and unreadable files ---------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   ", b"\n\n", b" \r\n\t\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_empty_bytes(data):
    table = read_table(data, ".csv")
    assert table.empty is True
    assert table.error == ""
    assert table.frame is None


@pytest.mark.parametrize("data", [b",,,\n;;\n", b"name,kind\n", b"name,kind\n,\n\n"])
def test_header_only_or_blank_rows_is_empty(data):
    table = read_table(data, ".csv")
    assert table.empty is True
    assert table.error == ""


@pytest.mark.parametrize(
    "data",
    [
        b"name,kind\nA\x00,b\n",
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",  # the start of an .xlsx (zip) file
        b"name,kind\n" + b"\x01\x02\x03" * 5 + b",b\n",
        b"\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b",
    ],
)
def test_binary_bytes_set_an_error(data):
    table = read_table(data, ".csv")
    assert table.error == "it looks like a binary file, not text"
    assert table.frame is None
    assert table.empty is False


def test_a_few_control_characters_are_still_text():
    table = read_table(b"name,kind\nA\x07,b\x0c\n", ".csv")
    assert table.error == ""
    assert table.frame is not None and table.frame.to_dict("records") == [{"name": "A\x07", "kind": "b\x0c", ROW: 2}]


def test_collection_paused_holds_the_collector_off_and_gives_it_back_as_it_was():
    import gc

    from curate.collector import collection_paused

    assert gc.isenabled()
    with pytest.raises(ValueError), collection_paused():
        assert not gc.isenabled()
        raise ValueError("a reader failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
