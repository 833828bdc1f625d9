"""The preview site inside each release (pure: index and listings in, file bytes out).

``index.html`` with the location chooser written into it, ``preview/app.js`` and
``preview/style.css`` (static files next to this module), and one small script per
location, ``preview/data/<CODE>.js``, holding that location's listings.  Data ships as
scripts because browsers refuse ``fetch()`` of local files opened from ``file://``; a
page loads only the chosen location's script, so a big release stays quick to preview.
Nothing is fetched from anywhere but the release itself.
"""

from __future__ import annotations

import html
import json
import operator
import re
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any, TypeVar

import orjson

ASSETS = ("app.js", "style.css")
#: what a script taken from the release before is given as (``curate.export.Taken``)
T = TypeVar("T")
#: the listing fields the preview shows (the rest stay in locations/<CODE>.json)
SHOWN = (
    "id", "name", "kind", "description", "url", "phone", "sms", "chat_url", "email", "areas", "languages",
    "topics", "audience", "cost", "hours", "always_open", "verified_at", "link_status", "link_checked_at",
)  # fmt: skip


def _asset(name: str) -> bytes:
    return resources.files("curate").joinpath("preview_assets", name).read_bytes()


def _option(loc: dict[str, Any]) -> str:
    label = ("\u2003" if loc["type"] == "region" else "") + f"{loc['name']} ({loc['code']}) \u00b7 {loc['count']}"
    parent = f' data-parent="{html.escape(loc["parent"])}"' if loc.get("parent") else ""
    return f'<option value="{html.escape(loc["code"])}" data-type="{html.escape(loc["type"])}"{parent}>{html.escape(label)}</option>'


def ordered_locations(index: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Worldwide first, then each country followed by its regions (codes sorted)."""
    countries = [x for x in index if x["type"] != "region"]
    regions: dict[str, list[dict[str, Any]]] = {}
    for x in index:
        if x["type"] == "region":
            regions.setdefault(x["parent"], []).append(x)
    out = []
    for c in sorted(countries, key=lambda x: (x["code"] != "WW", x["code"])):
        out.append(c)
        out += sorted(regions.pop(c["code"], []), key=lambda x: x["code"])
    for rest in regions.values():  # a region whose country is not a location of its own
        out += rest
    return out


def index_html(index: list[dict[str, Any]]) -> bytes:
    options = "\n        ".join(_option(x) for x in ordered_locations(index))
    page = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Support directory: release preview</title>
  <link rel="stylesheet" href="preview/style.css">
</head>
<body>
  <header>
    <h1>Support directory</h1>
    <p class="note">A preview of this release: choose a location to see the listings a site would show there.</p>
    <form id="filters" onsubmit="return false">
      <label>Location
        <select id="location">
        <option value="">Choose a location</option>
        {options}
        </select>
      </label>
      <label>Language
        <select id="language"><option value="">All languages</option></select>
      </label>
      <label>Topic
        <select id="topic"><option value="">All topics</option></select>
      </label>
    </form>
  </header>
  <main>
    <p id="status" role="status">Choose a location.</p>
    <div id="listings"></div>
  </main>
  <script src="preview/app.js"></script>
</body>
</html>
"""
    return page.encode("utf-8")


def location_script(code: str, listings: list[dict[str, Any]], shown: dict[int, str] | None = None) -> bytes:
    """``window.previewData(code, [...])``; ``shown``: each listing's JSON (its SHOWN fields) by ``id()``, made once
    for every location it is in."""
    shown = shown if shown is not None else {}
    parts = [shown.get(id(x)) or _shown_json(x) for x in listings]
    return f"window.previewData({json.dumps(code)},[{','.join(parts)}]);\n".encode()


_SHOWN_OF = operator.itemgetter(*SHOWN)


def _shown_json(listing: dict[str, Any]) -> str:
    """The fields the preview shows, as compact ASCII JSON (safe in any script context): the text
    ``json.dumps(..., ensure_ascii=True, separators=(",", ":"))`` gives, written by orjson (about 8 s of a 535k-listing
    release by the standard library) with what is not printable ASCII escaped after it (when there is any).

    A str, not orjson's bytes, since every listing's is held until the scripts are written: a bytes object from
    ``orjson.dumps`` keeps the buffer it was written in (about 4 kB), and 534k of them took 3.5 GB."""
    try:
        shown = dict(zip(SHOWN, _SHOWN_OF(listing), strict=True))
    except KeyError:  # (a listing without some field: None, as ``get`` gives)
        shown = {k: listing.get(k) for k in SHOWN}
    try:
        text = orjson.dumps(shown).decode()
    except (orjson.JSONEncodeError, TypeError):  # a lone surrogate, or a value orjson does not write
        return json.dumps(shown, ensure_ascii=True, separators=(",", ":"))
    return text if text.isascii() and "\x7f" not in text else _UNPRINTABLE.sub(_escaped, text)


#: what ``json.dumps`` with ``ensure_ascii`` escapes and orjson writes as it is (orjson escapes controls alike)
_UNPRINTABLE = re.compile("[^\x00-\x7e]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # as a surrogate pair, as json.dumps writes it
        code -= 0x10000
        return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def script_path(code: str) -> str:
    """Where a location's preview script is in a release."""
    return f"preview/data/{code}.js"


def preview_files(index: list[dict[str, Any]], listings_by_code: dict[str, list[dict[str, Any]]]) -> dict[str, bytes]:
    return dict(iter_preview_files(index, listings_by_code))


def iter_preview_files(
    index: list[dict[str, Any]],
    listings_by_code: dict[str, list[dict[str, Any]]],
    kept: frozenset[str] = frozenset(),
    take: Callable[[str], T | None] | None = None,
) -> Iterator[tuple[str, bytes | T]]:
    """``preview_files`` one file at a time (a worldwide listing is in every location's script: at 535k listings,
    the scripts together were 1.4 GB held at once).  ``kept``: the locations whose script ``take`` gives (the
    previous release's, whose listings did not change), unless it gives None."""
    yield "index.html", index_html(index)
    for name in ASSETS:
        yield f"preview/{name}", _asset(name)
    shown: dict[int, str] = {}  # each listing's, made once, when the first script it is in is (not all before the
    # first script: at 534k listings, 3 s in which the caller gave nothing, ``publish``'s HSDS check waiting)
    for code, chosen in listings_by_code.items():
        rel = script_path(code)
        data = take(rel) if take is not None and code in kept else None
        if data is None:
            for x in chosen:
                if id(x) not in shown:
                    shown[id(x)] = _shown_json(x)
        yield rel, data if data is not None else location_script(code, chosen, shown)
