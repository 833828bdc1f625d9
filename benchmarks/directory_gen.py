"""Generate realistic directories of invented services (reserved domains, invented names), for benchmarks.

Two generators:

- ``rows`` / ``csv_bytes``: one messy curator file (``benchmarks/validate_speed.py``).
- ``directory``: a whole directory WITH GROUND TRUTH: invented services (entities), each listed by one
  or more sources with the perturbations real lists have (name typos, case, legal suffixes, dropped
  words; phone notations; URL variants; missing fields; an outdated number now and then) and the hard
  cases of entity resolution: the same national short number in several countries (different
  services), chapters of one organisation (same domain, own path and number), generic names
  ("Helpline", "Support group"), communities on one shared forum host (different paths), and
  worldwide communities listed under many countries (one service).  Each row carries ``entity_id``.
  ``staged=True`` gives values as staging stores them (E.164, ISO codes, canonical http(s) URLs);
  ``staged=False`` the notations curators write (``020 7946 0123``, ``Norge``).  ``source_files``
  splits a directory into curator CSV files (issue 9: 1M rows across 100 files).

Everything is invented: domains end in ``.example``, names are made of invented syllables.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass

KINDS = ["helpline", "Hotline", "chat", "forum", "text_line", "support group", "online_community", "online therapy"]
COUNTRIES = ["NO", "Norge", "GB", "United Kingdom", "DE", "Deutschland", "SE", "FR", "ES", "WW", "US", "AU"]
TOPICS = ["general", "depression; anxiety", "suicide", "eating disorder", "grief", "PTSD", "lgbtq", ""]
LANGS = ["en", "nb; en", "de", "English", "sv", "fr", "es", ""]
HEADER = ["record_id", "name", "kind", "description", "url", "phone", "sms", "country", "languages", "topics", "cost", "hours",
          "verified_at"]  # fmt: skip


def phone_for(country: str, rnd: random.Random) -> str:
    """A number of the right shape: fictional ranges where they exist (UK drama numbers, US 555-01xx)."""
    if country in ("GB", "United Kingdom"):
        return f"020 7946 0{rnd.randint(0, 999):03d}"
    if country == "US":
        return f"+1 202 555 01{rnd.randint(0, 99):02d}"
    if country in ("NO", "Norge"):
        return rnd.choice(["116 123", f"2{rnd.randint(1000000, 9999999)}"])
    return rnd.choice(["116 123", "116 111", ""])


def rows(n: int, seed: int = 1, source: int = 0) -> list[list[str]]:
    rnd = random.Random(seed * 1_000_003 + source)
    out = []
    for i in range(n):
        country = rnd.choice(COUNTRIES)
        name = f"Service {rnd.randint(1, n // 2 + 1)} {rnd.choice(['Line', 'Chat', 'Forum', 'Group'])}"
        url = f"https://service{rnd.randint(1, n)}.example/" if rnd.random() > 0.1 else ""
        phone = phone_for(country, rnd) if country != "WW" else ""
        out.append([
            f"s{source}-{i}", name if rnd.random() > 0.01 else "N/A", rnd.choice(KINDS), f"Invented service number {i} for benchmarks.",
            url, phone, "", country, rnd.choice(LANGS), rnd.choice(TOPICS), rnd.choice(["free", "gratis", "paid", ""]),
            rnd.choice(["24/7", "24h", ""]), rnd.choice(["", "2025-06-30", "30.06.2025", "2026-01-15"]),
        ])  # fmt: skip
    return out


def csv_bytes(n: int, seed: int = 1, source: int = 0) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HEADER)
    writer.writerows(rows(n, seed, source))
    return buf.getvalue().encode("utf-8")


# --- directories with ground truth ----------------------------------------------------------------------

SYLLABLES = [
    "ka",
    "la",
    "mo",
    "ri",
    "su",
    "ven",
    "tor",
    "al",
    "bri",
    "dan",
    "el",
    "fi",
    "gor",
    "ha",
    "is",
    "jo",
    "kel",
    "lun",
    "mar",
    "nor",
    "os",
    "pel",
    "quin",
    "ras",
    "sol",
    "tam",
    "ul",
    "vik",
    "wen",
    "yar",
    "zel",
    "an",
    "be",
    "co",
    "du",
    "er",
    "ga",
    "hi",
    "ko",
    "lu",
    "mi",
    "na",
    "ol",
    "pa",
    "re",
    "si",
    "tu",
    "vo",
]
GENERIC_SUFFIX = [
    "Helpline",
    "Line",
    "Support",
    "Chat",
    "Forum",
    "Community",
    "Network",
    "Support Group",
    "Crisis Line",
    "Listening Service",
]
GENERIC_NAMES = ["Helpline", "Support group", "Forum", "Crisis line", "Chat", "Peer support", "Listening line", "Youth helpline"]
LEGAL = ["Ltd", "e.V.", "AS", "CIC", "Inc.", "gGmbH"]
#: country code -> (dialling prefix, digits after it); numbers are random, in an invented directory
DIALLING = {"GB": ("+44", 10), "IE": ("+353", 9), "NO": ("+47", 8), "SE": ("+46", 9), "DK": ("+45", 8), "DE": ("+49", 10),
            "FR": ("+33", 9), "ES": ("+34", 9), "NL": ("+31", 9), "US": ("+1", 10), "CA": ("+1", 10), "AU": ("+61", 9),
            "NZ": ("+64", 9), "FI": ("+358", 9), "IT": ("+39", 10)}  # fmt: skip
COUNTRY_CODES = list(DIALLING)
COUNTRY_NAMES = {"GB": "United Kingdom", "NO": "Norge", "DE": "Deutschland", "SE": "Sverige", "ES": "España", "FR": "France",
                 "US": "United States", "IE": "Ireland"}  # fmt: skip
SHORT_NUMBERS = ["116123", "116111", "116006", "116000"]
LINE_KINDS = ["helpline", "helpline", "helpline", "text_line", "chat"]
COMMUNITY_KINDS = ["online_community", "forum", "support_group"]


@dataclass
class Entity:
    """One real (invented) service: what every source listing it starts from."""

    id: int
    name: str
    kind: str
    countries: list[str]
    phone: str | None
    sms: str | None
    url: str | None
    email: str | None


class _Names:
    """Invented names; every entity gets a distinctive word of its own (real services' names collide far less than random syllables)."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.used: set[str] = set()

    def word(self) -> str:
        while True:
            word = "".join(self.rnd.choice(SYLLABLES) for _ in range(self.rnd.choice((2, 3, 3, 4)))).capitalize()
            if word not in self.used:
                self.used.add(word)
                return word

    def brand(self) -> str:
        shape = self.rnd.random()
        if shape < 0.35:
            return self.word()
        if shape < 0.8:
            return f"{self.word()} {self.rnd.choice(GENERIC_SUFFIX)}"
        return f"{self.word()} {self.word()}"


def _number(country: str, rnd: random.Random) -> str:
    prefix, digits = DIALLING.get(country, ("+47", 8))
    return prefix + str(rnd.randint(2, 9)) + "".join(str(rnd.randint(0, 9)) for _ in range(digits - 1))


def _slug(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def short_number_services(rnd: random.Random, names: _Names) -> list[Entity]:
    """One service per (country, national short number): 116 123 is a different service in each country.

    Some share one name and web site across countries (as a charity serving two countries might), yet
    each country's line is its own listing.
    """
    out: list[Entity] = []
    for number in SHORT_NUMBERS:
        shared = names.brand()
        for c in COUNTRY_CODES:
            same_name = rnd.random() < 0.3
            name = shared if same_name else names.brand()
            url = f"https://{_slug(name)}.example" + (f"/{c.lower()}" if same_name and rnd.random() < 0.5 else "")
            out.append(Entity(len(out), name, "helpline", [c], number, None, url, None))
    return out


def iter_entities(seed: int = 1) -> Iterator[Entity]:
    """Invented services without end, the hard cases mixed in (about 1 in 8 entities)."""
    rnd = random.Random(seed)
    names = _Names(rnd)
    forum_host = "forum.example"
    short = short_number_services(rnd, names)
    next_id = 0
    while True:
        batch: list[Entity] = []
        roll = rnd.random()
        country = rnd.choice(COUNTRY_CODES)
        if roll < 0.02 and short:  # the short-number services come early, then never again
            batch = short
            short = []
        elif roll < 0.05:  # chapters of one organisation: same domain, own path and number
            org = names.word()
            domain = f"{_slug(org)}.example"
            for _ in range(rnd.randint(2, 6)):
                town = names.word()
                batch.append(Entity(0, f"{org} {town}", rnd.choice(LINE_KINDS + COMMUNITY_KINDS), [country],
                                    _number(country, rnd) if rnd.random() < 0.8 else None, None,
                                    f"https://{domain}/{_slug(town)}", None))  # fmt: skip
        elif roll < 0.08:  # generic names: many different services called "Helpline"
            name = rnd.choice(GENERIC_NAMES)
            kind = "support_group" if "group" in name.lower() else ("forum" if name == "Forum" else "helpline")
            batch.append(Entity(0, name, kind, [country], _number(country, rnd) if rnd.random() < 0.7 else None, None,
                                f"https://{_slug(names.word())}.example/{_slug(name)}" if rnd.random() < 0.7 else None, None))  # fmt: skip
        elif roll < 0.10:  # communities on one shared forum host, each under its own path
            name = names.brand()
            batch.append(Entity(0, name, "forum", ["WW"] if rnd.random() < 0.5 else [country], None, None,
                                f"https://{forum_host}/c/{_slug(name)}", None))  # fmt: skip
        elif roll < 0.13:  # a worldwide community that sources list under many countries
            name = names.brand()
            email = f"hello@{_slug(name)}.example" if rnd.random() < 0.3 else None
            countries = rnd.sample(COUNTRY_CODES, rnd.randint(3, 8))
            batch.append(
                Entity(0, name, rnd.choice([*COMMUNITY_KINDS, "chat"]), countries, None, None, f"https://{_slug(name)}.example", email)
            )
        else:  # an ordinary service
            name = names.brand()
            kind = rnd.choice(LINE_KINDS + COMMUNITY_KINDS + ["online_therapy"])
            line = kind in LINE_KINDS
            batch.append(Entity(0, name, kind, ["WW"] if not line and rnd.random() < 0.3 else [country],
                                _number(country, rnd) if line or rnd.random() < 0.2 else None,
                                _number(country, rnd) if kind == "text_line" or rnd.random() < 0.05 else None,
                                f"https://{_slug(name)}.example" if rnd.random() < 0.9 else None,
                                f"help@{_slug(name)}.example" if rnd.random() < 0.3 else None))  # fmt: skip
        for e in batch:
            e.id = next_id
            next_id += 1
            yield e


def entities(n: int, seed: int = 1) -> list[Entity]:
    """The first ``n`` entities of ``iter_entities``."""
    out = []
    for e in iter_entities(seed):
        if len(out) >= n:
            break
        out.append(e)
    return out


def _typo(text: str, rnd: random.Random) -> str:
    if len(text) < 4:
        return text
    i = rnd.randrange(1, len(text) - 1)
    op = rnd.random()
    if op < 0.25:
        return text[:i] + text[i + 1 :]
    if op < 0.5:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if op < 0.75:
        return text[:i] + rnd.choice("aeiourstnl") + text[i:]
    return text[:i] + rnd.choice("aeiourstnl") + text[i + 1 :]


def _perturb_name(name: str, rnd: random.Random) -> str:
    r = rnd.random()
    if r < 0.45:
        return name
    if r < 0.6:
        return _typo(name, rnd)
    if r < 0.7:
        return name.upper() if rnd.random() < 0.5 else name.lower()
    if r < 0.8:
        return f"{name} {rnd.choice(LEGAL)}"
    if r < 0.87:
        return f"The {name}"
    words = name.split()
    if r < 0.94 and len(words) > 1 and words[-1] in {w.split()[-1] for w in GENERIC_SUFFIX}:
        return " ".join(words[:-1])  # "Kalamo Helpline" -> "Kalamo"
    return name.replace(" ", " - ", 1) if " " in name else name + "."


def _url_variant(url: str, rnd: random.Random) -> str:
    r = rnd.random()
    if r < 0.5:
        return url
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    if r < 0.62:
        return f"http://{host}/{path}"
    if r < 0.74:
        return f"{scheme}://www.{host}/{path}"
    if r < 0.84:
        return url.rstrip("/") + "/"
    if r < 0.9:
        return url.rstrip("/") + "/index.html"
    return url + ("&" if "?" in url else "?") + "utm_source=newsletter"


def _raw_phone(e164: str, rnd: random.Random) -> str:
    """A notation a curator writes for a staged number."""
    if not e164.startswith("+"):
        return e164[:3] + " " + e164[3:] if rnd.random() < 0.5 else e164
    r = rnd.random()
    if r < 0.3:
        return e164
    if r < 0.6:
        return "00" + e164[1:]
    digits = e164[1:]
    return "+" + " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))


def directory(n_rows: int, seed: int = 1, sources: int = 5, staged: bool = True) -> Iterator[dict[str, object]]:
    """About ``n_rows`` listing rows of invented services, each with its ``entity_id`` (the ground truth).

    Rows come as sources list them: a service is listed by 1 to ``sources`` sources (2.2 rows a service on
    average), a worldwide community under several countries by each.  Keys: ``source``, ``record_id``,
    ``entity_id`` and the contract columns (``name``, ``kind``, ``url``, ``phone``, ``sms``, ``email``,
    ``country``, ``verified_at``).
    """
    rnd = random.Random(seed * 7919 + 17)
    emitted = 0
    counters = [0] * sources
    for e in iter_entities(seed):
        if emitted >= n_rows:
            return
        copies = min(sources, 1 + int(rnd.expovariate(1 / 1.2)))
        for s in rnd.sample(range(sources), copies):
            countries = e.countries if len(e.countries) == 1 else rnd.sample(e.countries, rnd.randint(1, len(e.countries)))
            for country in countries:
                if emitted >= n_rows:
                    return
                phone = e.phone if e.phone and rnd.random() < 0.85 else None
                if phone and phone.startswith("+") and rnd.random() < 0.04:
                    phone = _number(country if country != "WW" else "NO", rnd)  # an outdated or other number
                sms = e.sms if e.sms and rnd.random() < 0.8 else None
                url = _url_variant(e.url, rnd) if e.url and rnd.random() < 0.88 else None
                email = e.email if e.email and rnd.random() < 0.6 else None
                if not (phone or sms or url):
                    url = e.url
                    phone = e.phone if not url else None
                    sms = e.sms if not (url or phone) else None
                    if not (phone or sms or url):
                        continue
                counters[s] += 1
                emitted += 1
                row: dict[str, object] = {
                    "source": f"source_{s:03d}",
                    "record_id": f"r{counters[s]}",
                    "entity_id": e.id,
                    "name": _perturb_name(e.name, rnd),
                    "kind": e.kind,
                    "url": url,
                    "phone": phone,
                    "sms": sms,
                    "email": email,
                    "country": country,
                    "verified_at": rnd.choice([None, "2025-06-30", "2026-01-15", "2026-09-01"]),
                }
                if not staged:
                    row["phone"] = _raw_phone(phone, rnd) if phone else None
                    row["sms"] = _raw_phone(sms, rnd) if sms else None
                    row["country"] = COUNTRY_NAMES.get(country, country) if rnd.random() < 0.2 else country
                    row["kind"] = e.kind.replace("_", " ")
                yield row


SOURCE_HEADER = ["record_id", "name", "kind", "url", "phone", "sms", "email", "country", "verified_at"]


def source_files(n_rows: int, n_files: int = 100, seed: int = 1) -> dict[str, tuple[bytes, dict[str, int]]]:
    """A directory of ``n_rows`` rows as ``n_files`` curator CSV files: file name -> (bytes, record_id -> entity_id)."""
    writers: dict[str, tuple[io.StringIO, csv.writer, dict[str, int]]] = {}  # type: ignore[valid-type]
    for row in directory(n_rows, seed, sources=n_files, staged=False):
        name = f"{row['source']}.csv"
        if name not in writers:
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(SOURCE_HEADER)
            writers[name] = (buf, w, {})
        buf, w, truth = writers[name]
        w.writerow(["" if row[c] is None else row[c] for c in SOURCE_HEADER])
        truth[str(row["record_id"])] = int(row["entity_id"])  # type: ignore[call-overload]
    return {name: (buf.getvalue().encode("utf-8"), truth) for name, (buf, _, truth) in writers.items()}
