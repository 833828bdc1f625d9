"""Generate realistic curator files of invented services (reserved domains, fictional number ranges), for benchmarks."""

from __future__ import annotations

import csv
import io
import random

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
