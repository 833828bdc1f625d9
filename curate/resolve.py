"""Entity resolution: which staged rows are one service.

The set-based work is SQL in ``warehouse/sql`` (``er_rows.sql`` -> ``er_pairs.sql`` -> ``er_clusters.sql``,
whose header comments document the blocking keys, the weights and the decision rule); this module
drives it (the clustering loop), parses the curators' ``sources/overrides.toml`` and renders the review
queue ``sources/reports/possible-duplicates.html``.  Parsing and rendering are pure; ``resolve`` and
``write_duplicates_report`` are the edges.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from html import escape
from pathlib import Path

import duckdb
import pyarrow as pa

from curate.report import STYLE
from curate.warehouse import run, sections, sql, sql_sha256

#: A listing id of an earlier run, or a row as ``<source id>/<record_id>``.
LISTING_REF = re.compile(r"^lst_[0-9a-f]{12}$")
ROW_REF = re.compile(r"^[a-z0-9_-]+/.+$")
OVERRIDE_KINDS = ("same", "different")
#: how many pairs the review page shows (the best-scoring first)
REVIEW_SHOWN = 500


@dataclass(frozen=True)
class ResolveParams:
    """The knobs of entity resolution (``er_params``); the weights themselves are in ``er_pairs.sql``."""

    #: a pair scoring at least this is a match
    match_threshold: int = 7
    #: pairs scoring from this up to just below the threshold go to the review queue
    review_floor: int = 3
    #: a pair scoring at or below this never ends in one cluster (chain guard)
    conflict_bound: int = -4
    #: a blocking key held by more rows than this pairs each row only with its ``block_window`` neighbours
    block_cap: int = 30
    block_window: int = 8
    #: a cluster larger than this is split at its weakest links
    max_cluster_size: int = 250
    #: clusters of up to this many rows have every pair of rows compared by the chain guard
    intra_limit: int = 250
    #: the chain guard stops after this many rounds (each cuts one link per incoherent cluster)
    max_guard_rounds: int = 200


@dataclass(frozen=True)
class Override:
    """A curator's statement that two rows (or listings) are the same service, or different ones."""

    kind: str  # same | different
    a: str
    b: str
    line: int

    def text(self) -> str:
        return override_line(self.a, self.b)


@dataclass
class Overrides:
    pairs: list[Override] = field(default_factory=list)
    #: plain-language problems with the file, each naming its line and what to do
    problems: list[str] = field(default_factory=list)

    def add(self, checked: tuple[Override | None, str | None]) -> None:
        """One entry as ``_check_entry`` judged it: the pair it holds, or the problem with it."""
        override, problem = checked
        if override:
            self.pairs.append(override)
        if problem:
            self.problems.append(problem)


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def override_line(a: str, b: str) -> str:
    """The line a curator adds inside ``same = [ ... ]`` or ``different = [ ... ]``."""
    return f"[{toml_string(a)}, {toml_string(b)}],"


def row_ref(source: str, record_id: str) -> str:
    return f"{source}/{record_id}"


def _check_entry(kind: str, value: object, line: int, file: str) -> tuple[Override | None, str | None]:
    where = f"{file} line {line}" if line else file
    fix = 'Write the pair as ["source/record_id", "source/record_id"] (or listing ids like "lst_0123456789ab"), one pair a line.'
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, str) for v in value):
        return None, f"{where}: {kind} entry {value!r} is not a pair of two texts; it is ignored. {fix}"
    a, b = (v.strip() for v in value)
    for ref in (a, b):
        if not (LISTING_REF.match(ref) or ROW_REF.match(ref)):
            return None, f"{where}: {ref!r} is neither a row (source/record_id) nor a listing id (lst_ and 12 hex); ignored. {fix}"
    if a == b:
        return None, f"{where}: both sides are {a!r}; a row is always the same as itself. Delete the line."
    return Override(kind, a, b, line), None


def _line_of(lines: list[str], value: object, start: int) -> int:
    """The 1-based line, from ``start`` on, where an entry is written (best effort: the first holding all its texts)."""
    needles = [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
    for i in range(start, len(lines)):
        if needles and all(n in lines[i] for n in needles):
            return i + 1
    return 0


def parse_overrides(text: str, file: str = "overrides.toml") -> Overrides:
    """The override pairs in the text of ``overrides.toml``, and plain-language problems; never raises.

    A file that is not valid TOML is read line by line, so that one bad line loses only itself.
    """
    out = Overrides()
    lines = text.splitlines()
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        out.problems.append(
            f"{file} is not valid TOML ({exc}); the lines that can be read on their own are used. "
            "Fix: each pair goes on its own line inside same = [ ... ] or different = [ ... ], like "
            '["alpha_lines/12", "beta_lines/7"],'
        )
        return _parse_lines(lines, file, out)
    for key, entries in table.items():
        if key not in OVERRIDE_KINDS:
            out.problems.append(f"{file}: unknown list {key!r} is ignored. Fix: use same = [ ... ] or different = [ ... ].")
            continue
        if not isinstance(entries, list):
            out.problems.append(f'{file}: {key} must be a list of pairs, like {key} = [ ["a/1", "b/2"], ]; it is ignored.')
            continue
        cursor = 0
        for entry in entries:
            line = _line_of(lines, entry, cursor)
            cursor = line or cursor
            out.add(_check_entry(key, entry, line, file))
    return out


def _line_value(line: str) -> object:
    """The TOML value written on one line (a pair, or a whole one-line list of pairs), or None."""
    bare = line.rstrip().rstrip(",")
    for candidate in (bare, re.sub(r"\s+#[^\"\']*$", "", bare).rstrip(","), bare.removesuffix("]").rstrip().rstrip(",")):
        try:
            return tomllib.loads(f"v = {candidate}")["v"]
        except tomllib.TOMLDecodeError:
            continue
    return None


def _parse_lines(lines: list[str], file: str, out: Overrides) -> Overrides:
    section: str | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        start = re.match(r"^(\w+)\s*=\s*\[(.*)$", line)
        if start:
            section = start.group(1) if start.group(1) in OVERRIDE_KINDS else None
            line = "[" + start.group(2).strip() if start.group(2).strip().startswith("[") else ""
        if not line.startswith("[") or section is None:
            continue
        value = _line_value(line)
        if value is None:
            out.problems.append(
                f"{file} line {number}: {raw.strip()!r} cannot be read and is ignored. "
                'Fix: write the pair like ["alpha_lines/12", "beta_lines/7"],'
            )
            continue
        entries = value if isinstance(value, list) and value and all(isinstance(v, list) for v in value) else [value]
        for entry in entries:
            out.add(_check_entry(section, entry, number, file))
    return out


def load_overrides(path: Path) -> Overrides:
    """``sources/overrides.toml``, or no overrides when it does not exist; never raises."""
    if not path.is_file():
        return Overrides()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return Overrides(problems=[f"{path.name} cannot be read ({exc}); no overrides are applied this run. Save it as UTF-8 text."])
    return parse_overrides(text, path.name)


# --- the SQL driver ---------------------------------------------------------------------------------------


@cache
def _suffix_list() -> object:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()  # the list bundled with the package; never fetched


def registrable_domain(host: str) -> str:
    """``example.co.uk`` for ``oslo.example.co.uk``; the host itself when the suffix list knows no better."""
    psl = _suffix_list()
    try:
        return psl.privatesuffix(host) or host  # type: ignore[attr-defined,no-any-return]
    except (ValueError, UnicodeError):
        return host


#: what ``registrable_domain`` answers by: the suffix list package and its version, and this code's own version
#: (raised when ``registrable_domain`` changes).  ``host_domains`` (er_rows.sql) forgets what other rules answered.
DOMAIN_RULES = f"publicsuffixlist {importlib.metadata.version('publicsuffixlist')}; registrable_domain 1"


def _register_functions(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.InvalidInputException, duckdb.CatalogException):
        con.remove_function("er_registrable_domain")
    con.create_function("er_registrable_domain", registrable_domain, ["VARCHAR"], "VARCHAR", side_effects=False)
    run(con, "CREATE OR REPLACE TEMP TABLE er_domain_rules AS SELECT CAST(? AS VARCHAR) AS rules", [DOMAIN_RULES])


def _count(con: duckdb.DuckDBPyConnection, text: str) -> int:
    return int(run(con, text)[0][0])  # type: ignore[call-overload]


def connected_components(con: duckdb.DuckDBPyConnection, cc: dict[str, str]) -> int:
    """``er_cc(node, comp)`` from ``er_cc_edges(a, b)``; returns the rounds it took."""
    run(con, cc["cc_init"])
    rounds = 0
    while True:
        rounds += 1
        while _count(con, cc["cc_shortcut"]):
            pass
        if not _count(con, cc["cc_hook"]):
            return rounds


STUCK = (
    "overrides.toml: some same pairs join rows that a different pair (or a hard conflict, such as one short "
    "number in two countries) keeps apart; the same pairs win. Fix: check the same and different lines for those rows."
)
#: the chain guard's rounds go on in Python (``guard_rounds``) once the clusters they judge have at most this many
#: edges: at 1M rows, the 38 rounds after the first judged 4,597 edges at most, and took DuckDB 1.1 s (a dozen
#: statements each), Python a few milliseconds
GUARD_IN_PYTHON = 50_000


def chain_guard(con: duckdb.DuckDBPyConnection, cl: dict[str, str], params: ResolveParams, out: Resolution) -> None:
    """The chain guard's rounds (``er_clusters.sql``: guard_find, guard_cut, then the clusters cut found again),
    until every cluster is coherent, a round cuts nothing (``STUCK``) or ``max_guard_rounds`` have run; counted in
    ``out``.  The rounds after the first big one run in Python on the few edges left (``guard_rounds``): the same cuts,
    clusters and tables."""
    for left in range(params.max_guard_rounds, 0, -1):
        if not _count(con, cl["guard_find"]):
            return
        out.guard_rounds += 1
        cut = _count(con, cl["guard_cut"])
        if not cut:
            out.problems.append(STUCK)
            return
        out.links_cut += cut
        if _count(con, "SELECT count(*) FROM er_cc_edges") <= GUARD_IN_PYTHON:
            rounds, cut, stuck = guard_rounds(con, params, left - 1)
            out.guard_rounds += rounds
            out.links_cut += cut
            if stuck:
                out.problems.append(STUCK)
            return
        connected_components(con, cl)


def components(edges: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Each node of ``edges`` and its component, named by its smallest node (as ``connected_components`` names it)."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        top = x
        while parent[top] != top:
            top = parent[top]
        while parent[x] != top:
            parent[x], x = top, parent[x]
        return top

    for a, b in edges:
        ra, rb = root(parent.setdefault(a, a)), root(parent.setdefault(b, b))
        if ra != rb:  # the smaller root stays: a component's root is its smallest node
            parent[max(ra, rb)] = min(ra, rb)
    return {x: root(x) for x in parent}


def guard_rounds(con: duckdb.DuckDBPyConnection, params: ResolveParams, rounds: int) -> tuple[int, int, bool]:
    """Up to ``rounds`` rounds of the chain guard in Python, on ``er_cc_edges`` (the edges of the clusters the last
    round cut): their clusters found, then, as guard_find and guard_cut do, the incoherent ones (a cannot-link inside,
    or more than max_cluster_size rows) each lose their weakest link not forced (of equally weak ones, that between
    the highest row ids; an oversized cluster every equally weak link) and are found again.  Writes what the SQL
    rounds write: the cuts into ``er_split`` and out of ``er_edges``, the coherent clusters into ``er_kept``, and the
    last clusters found into ``er_cc`` (guard_done keeps them).  Returns the rounds that cut, the links cut, and
    whether a round found incoherent clusters but nothing to cut."""
    found = run(con, "SELECT e.a, e.b, e.score, e.forced FROM er_cc_edges c JOIN er_edges e USING (a, b)")
    edges: dict[tuple[int, int], tuple[int, bool]] = {(int(a), int(b)): (int(s), bool(f)) for a, b, s, f in found}  # type: ignore[call-overload]
    run(con, "CREATE OR REPLACE TEMP TABLE er_guard_nodes AS SELECT a AS node FROM er_cc_edges UNION SELECT b FROM er_cc_edges")
    cannot = run(
        con,
        """
        SELECT DISTINCT c.a, c.b FROM er_cannot c
        SEMI JOIN er_guard_nodes x ON x.node = c.a SEMI JOIN er_guard_nodes y ON y.node = c.b""",
    )
    comp = components(edges)
    kept: list[tuple[int, int]] = []
    split: list[tuple[int, int, int]] = []
    done = cut_total = 0
    stuck = False
    for _ in range(rounds):
        sizes: dict[int, int] = {}
        for c in comp.values():
            sizes[c] = sizes.get(c, 0) + 1
        bad = {c: True for c, n in sizes.items() if n > params.max_cluster_size}  # incoherent, and oversized?
        for a, b in cannot:
            if a in comp and b in comp and comp[a] == comp[b]:  # type: ignore[index]
                bad.setdefault(comp[a], False)  # type: ignore[index]
        if not bad:
            break
        done += 1
        weakest: dict[int, list[tuple[int, int, int]]] = {}  # by cluster: its links not forced
        for (a, b), (score, forced) in edges.items():
            if not forced and comp[a] in bad:
                weakest.setdefault(comp[a], []).append((a, b, score))
        cut: list[tuple[int, int, int]] = []
        for c, links in weakest.items():
            if bad[c]:
                low = min(s for _, _, s in links)
                cut += [x for x in links if x[2] == low]
            else:
                cut.append(min(links, key=lambda x: (x[2], -x[1], -x[0])))
        split += cut
        for a, b, _ in cut:
            del edges[(a, b)]
        kept += [(n, c) for n, c in comp.items() if c not in bad]
        edges = {e: v for e, v in edges.items() if comp[e[0]] in bad}
        if not cut:
            stuck = True
            break
        cut_total += len(cut)
        comp = components(edges)
    _insert(con, "er_split", ["a", "b", "score"], split)
    run(con, "DELETE FROM er_edges USING er_split s WHERE er_edges.a = s.a AND er_edges.b = s.b")
    _insert(con, "er_kept", ["node", "comp"], kept)
    run(con, "CREATE OR REPLACE TEMP TABLE er_cc (node INTEGER, comp INTEGER)")
    _insert(con, "er_cc", ["node", "comp"], list(comp.items()))
    return done, cut_total, stuck


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: list[str], rows: Sequence[tuple[int, ...]]) -> None:
    """``rows`` into ``table`` (integer columns), as one Arrow table: not a statement per row."""
    if rows:
        given = pa.table({name: pa.array(values, pa.int32()) for name, values in zip(columns, zip(*rows, strict=True), strict=True)})
        con.register("er_given", given)
        try:
            run(con, f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM er_given")
        finally:
            con.unregister("er_given")


@dataclass
class Resolution:
    rows: int = 0
    candidate_pairs: int = 0
    matched_pairs: int = 0
    clusters: int = 0
    guard_rounds: int = 0
    links_cut: int = 0
    possible_duplicates: int = 0
    problems: list[str] = field(default_factory=list)


#: er_score_cache's rows, as a multiple of the pairs met this resolution, past which it keeps only those
SCORE_CACHE_MAX = 2


def _prune_score_cache(con: duckdb.DuckDBPyConnection) -> None:
    """er_score_cache (er_pairs.sql) made again of this resolution's pairs when it holds more than ``SCORE_CACHE_MAX``
    times as many rows (the pairs of rows changed or gone since), so it never grows without end."""
    held, met = run(con, "SELECT (SELECT count(*) FROM er_score_cache), (SELECT count(*) FROM er_todo_printed)")[0]
    if int(held) > SCORE_CACHE_MAX * max(int(met), 1000):  # type: ignore[call-overload]
        run(con, "CREATE OR REPLACE TABLE er_score_cache AS SELECT c.* FROM er_score_cache c SEMI JOIN er_todo_printed t USING (pa, pb)")


def resolve(
    con: duckdb.DuckDBPyConnection,
    overrides: Overrides | None = None,
    params: ResolveParams | None = None,
    input_table: str = "stg_listings",
    reuse: bool = True,
) -> Resolution:
    """Cluster the rows of ``input_table`` into ``er_clusters(row_key, cluster)`` and fill ``possible_duplicates``.

    Also records the override problems (bad lines, rows not found) in ``override_problems``.  ``reuse``: take the
    features of the rows the last resolution met unchanged from ``er_row_cache`` (er_rows.sql); False works every
    row's out again (the same features, slower).
    """
    params = params or ResolveParams()
    overrides = overrides or Overrides()
    _register_functions(con)
    made_by = sql_sha256("er_rows", sql("er_pairs"), DOMAIN_RULES)
    run(con, "CREATE TABLE IF NOT EXISTS er_cache_made_by (made_by VARCHAR NOT NULL)")
    if not reuse or not run(con, "SELECT 1 FROM er_cache_made_by WHERE made_by = ?", [made_by]):
        run(con, "DROP TABLE IF EXISTS er_row_cache")  # (features worked out by other rules)
        run(con, "DROP TABLE IF EXISTS er_score_cache")  # (scores given by other weights, or of other features)
        run(con, "DELETE FROM er_cache_made_by")
        run(con, "INSERT INTO er_cache_made_by VALUES (?)", [made_by])
    run(con, f"CREATE OR REPLACE TEMP VIEW er_input AS SELECT * FROM {input_table}")
    values = asdict(params)
    run(con, f"CREATE OR REPLACE TEMP TABLE er_params AS SELECT {', '.join(f'{int(v)} AS {k}' for k, v in values.items())}")
    run(con, "CREATE OR REPLACE TEMP TABLE er_override_refs (kind VARCHAR, a_ref VARCHAR, b_ref VARCHAR, line INTEGER)")
    if overrides.pairs:
        con.executemany("INSERT INTO er_override_refs VALUES (?, ?, ?, ?)", [[o.kind, o.a, o.b, i] for i, o in enumerate(overrides.pairs)])
    run(con, sql("er_rows"))
    run(con, sql("er_pairs"))
    _prune_score_cache(con)
    out = Resolution(problems=list(overrides.problems))
    for o in overrides.pairs:
        found = run(
            con,
            """
            SELECT ref FROM (SELECT unnest([?, ?]) AS ref)
            WHERE ref NOT IN (SELECT row_key FROM er_rows) AND ref NOT IN (SELECT listing_id FROM listing_members)
            """,
            [o.a, o.b],
        )
        if found:
            where = f"overrides.toml line {o.line}" if o.line else "overrides.toml"
            missing = ", ".join(repr(str(r[0])) for r in found)
            out.problems.append(
                f"{where}: {o.kind} {o.text()} names {missing}, which no source has this run; the line has no effect. "
                "Fix: check the source and record_id (or listing id), or delete the line if the row is gone."
            )
    cl = sections("er_clusters")
    run(con, cl["guard_start"])
    out.rows = _count(con, "SELECT count(*) FROM er_rows")
    out.candidate_pairs = _count(con, "SELECT count(*) FROM er_pairs")
    out.matched_pairs = _count(con, "SELECT count(*) FROM er_edges")
    connected_components(con, cl)
    run(con, cl["guard_intra"])
    chain_guard(con, cl, params, out)
    run(con, cl["guard_done"])
    run(con, cl["finish"])
    out.clusters = _count(con, "SELECT count(DISTINCT cluster) FROM er_clusters")
    out.possible_duplicates = _count(con, "SELECT count(*) FROM possible_duplicates")
    run(con, "CREATE OR REPLACE TABLE override_problems (message VARCHAR)")
    if out.problems:
        con.executemany("INSERT INTO override_problems VALUES (?)", [[p] for p in out.problems])
    return out


# --- the review queue -------------------------------------------------------------------------------------

#: plain words for each comparison outcome (er_pairs.sql)
SAYS: dict[str, dict[str, str]] = {
    "name_cmp": {"exact": "the names are the same", "close": "the names are nearly the same", "like": "the names are alike",
                 "differ": "the names differ", "unsure": "the names are somewhat alike",
                 "generic": "a name is too general to tell services apart (like “Helpline”)"},
    "phone_cmp": {"same": "they share a phone or SMS number", "differ": "their numbers differ",
                  "short_other_country": "the same short number, but in different countries (a different service in each)"},
    "url_cmp": {"same": "the same web address", "host_root": "the same web site (one names its front page)",
                "other_path": "the same web site, but different pages (chapters of one organisation?)",
                "same_domain": "web addresses on the same domain", "differ": "different web sites"},
    "email_cmp": {"same": "the same email address", "differ": "different email addresses"},
    "kind_cmp": {"same": "the same kind of service", "family": "similar kinds of service", "differ": "different kinds of service"},
    "country_cmp": {"same": "the same country", "differ": "different countries",
                    "differ_online": "different countries (for services used online, or at one web address, this says little)"},
}  # fmt: skip
SHOWN_FIELDS = ("name", "kind", "country", "phone", "sms", "url", "email")


def render_duplicates_html(pairs: list[dict[str, object]], problems: list[str], total: int | None = None) -> str:
    """``possible-duplicates.html``: each pair side by side, why it looks alike, and the override lines that settle it."""
    total = len(pairs) if total is None else total
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Possible duplicates</title><style>{STYLE}</style></head><body>",
        "<h1>Possible duplicates</h1>",
        f"<p>The directory found <b>{total}</b> pairs of rows that look alike but were <b>not</b> merged into one listing: "
        "the evidence was not strong enough, or merging them would have joined services that must stay apart.</p>",
        "<p class='muted'>For each pair, decide: <b>one service</b> or <b>two services</b>. Copy the line shown into "
        "<code>sources/overrides.toml</code>, inside <code>same = [ ... ]</code> or <code>different = [ ... ]</code>, "
        "and the next run obeys it. A pair you leave alone stays apart and is shown here again.</p>",
    ]
    if problems:
        out.append("<h2>Problems with overrides.toml</h2><ul>")
        out += [f"<li class='error'>{escape(p)}</li>" for p in problems]
        out.append("</ul>")
    if not pairs:
        out.append("<p>No possible duplicates. Nothing to review.</p>")
    if total > len(pairs):
        out.append(f"<p class='muted'>The {len(pairs)} most alike are shown; settle them and the next run shows the rest.</p>")
    for i, p in enumerate(pairs, start=1):
        a = row_ref(str(p["a_source"]), str(p["a_record"]))
        b = row_ref(str(p["b_source"]), str(p["b_record"]))
        reasons = [SAYS[c][str(p[c])] for c in SAYS if p.get(c) is not None and str(p[c]) in SAYS[c]]
        out.append(f"<div class='row' id='pair-{i}'><h3>{i}. {escape(str(p['a_name']))} — {escape(str(p['b_name']))}</h3>")
        out.append("<table><tr><th></th><th>first row</th><th>second row</th></tr>")
        out.append(f"<tr><th>source, record</th><td>{escape(a)}</td><td>{escape(b)}</td></tr>")
        for f in SHOWN_FIELDS:
            va, vb = p.get(f"a_{f}"), p.get(f"b_{f}")
            if va is not None or vb is not None:
                out.append(
                    f"<tr><th>{f}</th><td>{escape('' if va is None else str(va))}</td><td>{escape('' if vb is None else str(vb))}</td></tr>"
                )
        out.append("</table>")
        why = "kept apart because merging would join services that conflict" if p.get("why") == "kept apart by the chain guard" else ""
        out.append(f"<p>Alike: {escape('; '.join(reasons))}.{' ' + escape(why) + '.' if why else ''} <span class='muted'>(score "
                   f"{escape(str(p['score']))})</span></p>")  # fmt: skip
        line = escape(override_line(a, b))
        out.append(f"<p class='fix'>One service? Add inside <code>same = [</code>: <code>{line}</code><br>"
                   f"Two services? Add inside <code>different = [</code>: <code>{line}</code></p></div>")  # fmt: skip
    out.append("</body></html>\n")
    return "\n".join(out)


def duplicates(con: duckdb.DuckDBPyConnection, limit: int = REVIEW_SHOWN) -> tuple[list[dict[str, object]], int, list[str]]:
    """The review queue's first ``limit`` pairs, its size, and the override problems of the last resolution."""
    if not run(con, "SELECT 1 FROM information_schema.tables WHERE table_name = 'possible_duplicates'"):
        return [], 0, []
    cur = con.execute("SELECT * FROM possible_duplicates LIMIT ?", [limit])
    names = [d[0] for d in cur.description or []]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    total = _count(con, "SELECT count(*) FROM possible_duplicates")
    problems = [str(r[0]) for r in run(con, "SELECT message FROM override_problems")]
    return rows, total, problems


def write_duplicates_report(reports_dir: Path, con: duckdb.DuckDBPyConnection) -> Path:
    """``<reports_dir>/possible-duplicates.html`` from the last resolution in the warehouse."""
    rows, total, problems = duplicates(con)
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / "possible-duplicates.html"
    path.write_text(render_duplicates_html(rows, problems, total), encoding="utf-8")
    return path
