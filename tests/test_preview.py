"""The preview page of a release, driven in headless Chromium (Debian's chromium + chromium-driver via Selenium).

Opened from file:// and served over HTTP on loopback: choosing a location shows exactly its listings, grouped by
kind; ?location= preselects; language and topic filters work; a hostile description is rendered as text; the page
requests nothing outside the release.  In CI (CI=true) a missing browser fails these tests instead of skipping them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate import export, preview
from tests.loopback import running
from tests.test_export import listing

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> & <b>bold</b>'

LISTINGS = sorted(
    [
        listing("1", "Fjord Helpline", ["NO"], phone="116123", sms="2222", url="https://fjord.example/", languages=["nb"],
                topics=["general"], always_open=True, hours="24/7", verified_at="2026-06-30", link_status="alive"),
        listing("2", "Oslo Chat", ["NO-03"], kind="chat", chat_url="https://oslo.example/chat", languages=["nb", "en"],
                topics=["loneliness"], link_status="degraded"),
        listing("3", "Bergen Line", ["NO-46"], phone="+4755000000", languages=["nn"], topics=["suicide"]),
        listing("4", "World Forum", ["WW"], kind="forum", url="https://forum.example/", languages=["en"], topics=["depression"]),
        listing("5", "Hostile Text", ["SE"], url="https://hostile.example/", description=HOSTILE),
        listing("6", "Stockholm Group", ["SE-AB"], kind="support_group", url="https://group.example/", languages=["sv"]),
    ],
    key=lambda x: (x["kind"], x["name"], x["id"]),
)  # fmt: skip


def _browser_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    if not _browser_available():
        message = "chromium and chromium-driver are needed (apt-get install chromium chromium-driver; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("release")
    for rel, data in export.release_files(LISTINGS).items():  # hostile text as-is: the page must cope with anything
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def served(release: Path) -> Iterator[str]:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(release))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    with running(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/"


def wait(driver, condition, timeout: float = 10.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def shown_ids(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('[data-listing-id]')].map(e => e.dataset.listingId)")


def expected_ids(release: Path, code: str) -> list[str]:
    return [x["id"] for x in json.loads((release / "locations" / f"{code}.json").read_text())["listings"]]


def status(driver) -> str:
    return driver.find_element("id", "status").text


def choose(driver, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", select_id)).select_by_value(value)


@pytest.fixture(params=["file", "http"])
def base(request, release: Path) -> str:
    return release.as_uri() + "/" if request.param == "file" else request.getfixturevalue("served")


def test_chooser_lists_every_location_country_then_region(driver, base, release):
    driver.get(base + "index.html")
    values = driver.execute_script("return [...document.querySelectorAll('#location option')].map(o => o.value)")
    assert values == ["", "WW", "NO", "NO-03", "NO-46", "SE", "SE-AB"]
    index = [x["code"] for x in json.loads((release / "index.json").read_text())["locations"]]
    assert sorted(values[1:]) == sorted(index)


@pytest.mark.parametrize("code", ["NO", "NO-03", "SE", "WW"])
def test_choosing_a_location_shows_exactly_its_listings(driver, base, release, code):
    driver.get(base + "index.html")
    choose(driver, "location", code)
    want = expected_ids(release, code)
    wait(driver, lambda d: sorted(shown_ids(d)) == sorted(want))
    kinds = driver.execute_script("return [...document.querySelectorAll('section.kind')].map(s => s.dataset.kind)")
    assert len(kinds) == len(set(kinds))  # one group per kind
    grouped = driver.execute_script(
        "return [...document.querySelectorAll('[data-listing-id]')].every(e => e.closest('section').dataset.kind === e.dataset.kind)"
    )
    assert grouped
    assert f"?location={code}" in driver.current_url


def test_location_in_the_address_is_preselected(driver, base, release):
    driver.get(base + "index.html?location=NO")
    wait(driver, lambda d: sorted(shown_ids(d)) == sorted(expected_ids(release, "NO")))
    assert driver.execute_script("return document.getElementById('location').value") == "NO"


def test_language_and_topic_filters(driver, base, release):
    driver.get(base + "index.html?location=NO")
    wait(driver, lambda d: len(shown_ids(d)) == 4)
    names = {x["id"]: x["name"] for x in LISTINGS}
    choose(driver, "language", "nb")
    wait(driver, lambda d: {names[i] for i in shown_ids(d)} == {"Fjord Helpline", "Oslo Chat"})
    choose(driver, "topic", "loneliness")
    wait(driver, lambda d: {names[i] for i in shown_ids(d)} == {"Oslo Chat"})
    choose(driver, "language", "")
    choose(driver, "topic", "suicide")
    wait(driver, lambda d: {names[i] for i in shown_ids(d)} == {"Bergen Line"})
    assert "1 of 4 listings" in status(driver)


def test_buttons_badge_link_health_and_verified_date(driver, base):
    driver.get(base + "index.html?location=NO-03")
    fjord = next(x["id"] for x in LISTINGS if x["name"] == "Fjord Helpline")
    card = wait(driver, lambda d: d.find_element("css selector", f'[data-listing-id="{fjord}"]'))
    hrefs = [a.get_attribute("href") for a in card.find_elements("css selector", "a.button")]
    assert hrefs == ["tel:116123", "sms:2222", "https://fjord.example/"]
    assert card.find_element("css selector", ".badge.always-open").text == "24/7"
    assert card.find_element("css selector", ".link-status").text == "Links work"
    assert card.find_element("css selector", ".verified").text == "Verified 2026-06-30"
    chat = next(x["id"] for x in LISTINGS if x["name"] == "Oslo Chat")
    other = driver.find_element("css selector", f'[data-listing-id="{chat}"]')
    assert [a.get_attribute("href") for a in other.find_elements("css selector", "a.button")] == ["https://oslo.example/chat"]
    assert not other.find_elements("css selector", ".badge") and "Not verified" in other.text


def test_hostile_description_is_rendered_as_text(driver, base):
    driver.get(base + "index.html?location=SE")
    hostile = next(x["id"] for x in LISTINGS if x["name"] == "Hostile Text")
    card = wait(driver, lambda d: d.find_element("css selector", f'[data-listing-id="{hostile}"]'))
    assert card.find_element("css selector", ".description").text == HOSTILE
    assert not card.find_elements("css selector", "img, script, b")
    assert driver.execute_script("return window.__pwned === undefined")


def test_page_requests_only_the_release_files(driver, base, release):
    driver.get(base + "index.html?location=NO")
    wait(driver, lambda d: len(shown_ids(d)) == 4)
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"  # empty on file://, hence the DOM too
        " .concat([...document.querySelectorAll('script[src], link[href], img[src], iframe[src]')].map(e => e.src || e.href))"
    )
    assert loaded and all(url.startswith(base) for url in loaded), loaded
    assert any(url.endswith("preview/data/NO.js") for url in loaded)
    assert not any("/data/SE" in url for url in loaded)  # only the chosen location's data is loaded
    for rel in ("index.html", "preview/app.js", "preview/style.css"):  # no address outside the release in the page itself
        text = (release / rel).read_text(encoding="utf-8")
        assert not any(marker in text for marker in ("http://", "https://", "url(", "@import", "fetch(", "XMLHttpRequest"))


def test_unknown_location_says_so(driver, base):
    driver.get(base + "index.html?location=XX")
    wait(driver, lambda d: "No listings for location XX" in status(d))
    assert shown_ids(driver) == []


def test_region_options_follow_their_country():
    index = [
        {"code": "WW", "type": "worldwide", "parent": None},
        {"code": "NO-03", "type": "region", "parent": "NO"},
        {"code": "AT", "type": "country", "parent": None},
        {"code": "NO", "type": "country", "parent": None},
    ]
    assert [x["code"] for x in preview.ordered_locations(index)] == ["WW", "AT", "NO", "NO-03"]


_text = st.one_of(st.none(), st.text(), st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F)))


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "id": st.text(),
            "name": _text,
            "description": _text,
            "areas": st.lists(st.text(), max_size=3),
            "always_open": st.one_of(st.none(), st.booleans()),
            "hours": st.sampled_from(["24/7", "Mon\u2013Fri 9\u201317", '\u2028\x7f\x1f\t"', "\U0001f600 \u00e6\u00f8\u00e5", "\ud800"]),
        }
    )
)
def test_shown_json_is_what_the_standard_library_writes_in_ascii(listing):
    """orjson writes the preview's records; what it leaves unescaped is escaped after, as json.dumps escapes it."""
    from curate.preview import SHOWN, _shown_json

    expected = json.dumps({k: listing.get(k) for k in SHOWN}, ensure_ascii=True, separators=(",", ":"))
    assert _shown_json(listing) == expected  # (a listing without some of the fields)
    assert _shown_json({**dict.fromkeys(SHOWN), **listing, "unshown": "\x7f"}) == expected  # (one with all, and more)
    assert _shown_json(listing).isascii()


def test_the_preview_records_held_take_about_their_length():
    """Every listing's preview record is held until the scripts are written: one record must not keep the buffer it
    was written in (orjson's bytes kept about 4 kB each: 534k records took 3.5 GB)."""
    import tracemalloc

    from curate.preview import _shown_json

    listings = [{"id": f"id-{i}", "name": f"Line {i}", "description": "words " * 40, "areas": ["NO"]} for i in range(2000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [_shown_json(x) for x in listings]
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    length = sum(map(len, held))
    assert length > 2000 * 250
    assert grown < length + 2000 * 120, (grown, length)  # (an object's header and the list's slot)


def test_each_script_is_given_once_its_own_records_are_made(monkeypatch):
    """A location's script is given as soon as its listings' records are made, each record once for every script it
    is in: ``publish`` gives the HSDS package between two scripts, and its check then starts that much sooner."""
    made: list[str] = []
    shown_json = preview._shown_json
    monkeypatch.setattr(preview, "_shown_json", lambda x: made.append(str(x["id"])) or shown_json(x))
    world = listing("4", "World Forum", ["WW"], kind="forum")
    norway, sweden = listing("1", "Fjord Helpline", ["NO"]), listing("5", "Lake Line", ["SE"])
    by_code = {"WW": [world], "NO": [world, norway], "SE": [world, sweden]}
    index = [{"code": c, "name": c, "type": "country", "parent": None, "count": len(x)} for c, x in by_code.items()]
    given: dict[str, list[str]] = {}
    for rel, _ in preview.iter_preview_files(index, by_code):
        given[rel] = list(made)
    assert given["preview/data/WW.js"] == [str(world["id"])]
    assert given["preview/data/NO.js"] == [str(world["id"]), str(norway["id"])]
    assert made == [str(x["id"]) for x in (world, norway, sweden)]  # (each once)
    scripts = {rel: data for rel, data in preview.iter_preview_files(index, by_code) if rel.startswith("preview/data/")}
    assert scripts["preview/data/SE.js"] == preview.location_script("SE", by_code["SE"])
