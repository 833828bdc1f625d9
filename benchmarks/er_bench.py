"""Entity resolution: quality and speed against ground truth, ours and Splink 5's side by side.

usage: python -m benchmarks.er_bench [ROWS ...] [--no-splink] [--seed N]      (default: 10000)

For each size: ``benchmarks.directory_gen.directory`` generates that many staged rows of invented
services with their true entity ids (perturbed names, phone and URL variants, missing fields and
the hard cases); they are written as ``stg_listings`` into a fresh DuckDB file. Then, each in a
fresh process so that its peak memory (ru_maxrss) is its own:

- ours:   ``curate.resolve.resolve`` on that table (blocking, scoring, clustering, chain guard: resolution
          alone, without building core_listings), timed from the opened database to ``er_clusters``.
- splink: Splink 5 on DuckDB over the same rows, with a competent configuration: the same normalised
          name, numbers, web address, host and registrable domain as inputs; Jaro-Winkler levels on the
          name, array intersection on numbers, exact/host/domain levels on the address, exact email,
          kind and country; blocking on numbers, address, domain, email and country + name; lambda from
          deterministic rules, u by random sampling, m by EM on three blocking rules; predict, then
          connected components at several probability thresholds (the best F1 is reported; the time
          counts training, predicting and one clustering).

Pairwise precision and recall: over all pairs of rows, a pair is predicted when both rows are in one
cluster and true when both come from one entity.  Install Splink with ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from benchmarks.directory_gen import directory

#: Splink's probability thresholds tried for clustering
SPLINK_THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99)


def build_db(path: Path, n: int, seed: int) -> None:
    """A warehouse file whose ``stg_listings`` holds ``n`` generated staged rows, and ``truth(row_key, entity_id)``."""
    from curate import warehouse as wh

    frame = pd.DataFrame(list(directory(n, seed)))
    con = wh.connect(path)
    con.register("gen", frame)
    wh.run(
        con,
        """
        INSERT INTO stg_listings BY NAME
        SELECT source || '/' || record_id AS row_key, 'id:' || record_id AS match_key, source AS source_id,
               CAST(row_number() OVER () AS INTEGER) AS row, 0 AS priority, 1 AS completeness,
               record_id, name, kind, url, phone, sms, email, country, [country] AS areas, CAST(verified_at AS DATE) AS verified_at
        FROM gen
        """,
    )
    wh.run(con, "CREATE TABLE truth AS SELECT source || '/' || record_id AS row_key, entity_id FROM gen")
    con.close()


def pairwise_quality(con: duckdb.DuckDBPyConnection, clusters: str) -> dict[str, float]:
    """Pairwise precision, recall and F1 of ``clusters(row_key, cluster)`` against ``truth``."""
    tp, predicted, true = con.execute(
        f"""
        WITH j AS (SELECT c.cluster, t.entity_id FROM {clusters} c JOIN truth t USING (row_key))
        SELECT (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) AS n FROM j GROUP BY cluster, entity_id)),
               (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) AS n FROM j GROUP BY cluster)),
               (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) AS n FROM j GROUP BY entity_id))
        """
    ).fetchall()[0]
    p = float(tp) / float(predicted) if predicted else 1.0
    r = float(tp) / float(true) if true else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "true_pairs": float(true)}


def worker_ours(path: Path) -> dict[str, object]:
    from curate.resolve import resolve

    t0 = time.perf_counter()
    con = duckdb.connect(str(path))
    res = resolve(con)
    seconds = time.perf_counter() - t0
    out: dict[str, object] = {"seconds": seconds, **pairwise_quality(con, "er_clusters")}
    out.update({"candidate_pairs": res.candidate_pairs, "matched_pairs": res.matched_pairs, "clusters": res.clusters,
                "guard_rounds": res.guard_rounds, "links_cut": res.links_cut, "possible_duplicates": res.possible_duplicates})  # fmt: skip
    return out


SPLINK_INPUT = """
CREATE OR REPLACE TABLE splink_input AS
SELECT rid AS unique_id, row_key, nullif(name_cmp, '') AS name_cmp, country, kind, email, url_key, host, domain,
       CASE WHEN len(phone_keys) > 0 THEN phone_keys END AS phones,
       phone_keys[1] AS phone1, phone_keys[2] AS phone2,
       CASE WHEN len(name_tokens) > 0 THEN name_tokens[1] END AS token1
FROM er_rows
"""


def worker_splink(path: Path) -> dict[str, object]:
    import logging

    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    from curate.resolve import _register_functions
    from curate.warehouse import sql

    t0 = time.perf_counter()
    con = duckdb.connect(str(path))
    # the same normalised inputs as ours (er_rows.sql: names without stop words, number keys, URL keys, domains)
    _register_functions(con)
    con.execute("CREATE OR REPLACE TEMP VIEW er_input AS SELECT * FROM stg_listings")
    con.execute(sql("er_rows"))
    con.execute(SPLINK_INPUT)
    db_api = DuckDBAPI(con)
    df = db_api.register("splink_input")
    url_levels = [
        cll.NullLevel("url_key"),
        cll.ExactMatchLevel("url_key"),
        cll.CustomLevel('"host_l" = "host_r"', "same host"),
        cll.CustomLevel('"domain_l" = "domain_r"', "same registrable domain"),
        cll.ElseLevel(),
    ]
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("name_cmp", [0.95, 0.88, 0.7]),
            cl.ArrayIntersectAtSizes("phones", [1]),
            cl.CustomComparison(url_levels, output_column_name="url_key"),
            cl.ExactMatch("email"),
            cl.ExactMatch("kind"),
            cl.ExactMatch("country"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("phone1"),
            block_on("phone2"),
            block_on("url_key"),
            block_on("domain"),
            block_on("email"),
            block_on("country", "token1"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    linker = Linker(df, settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("url_key", "name_cmp"), block_on("phone1", "name_cmp")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    failed = []
    for name, rule in (("url_key", block_on("url_key")), ("phone1", block_on("phone1")), ("name_cmp", block_on("name_cmp"))):
        try:  # a session whose EM drives a level's m to 0 fails in Splink 5: the other sessions still train the model
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except ValueError:
            failed.append(name)
    predictions = linker.inference.predict(threshold_match_probability=min(SPLINK_THRESHOLDS))
    best: dict[str, object] = {}
    for i, threshold in enumerate(SPLINK_THRESHOLDS):
        t1 = time.perf_counter()
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold_match_probability=threshold)
        table = clusters.physical_name
        con.execute(f"CREATE OR REPLACE TABLE splink_clusters AS SELECT i.row_key, c.cluster_id AS cluster FROM {table} c "
                    "JOIN splink_input i USING (unique_id)")  # fmt: skip
        if i == 0:
            seconds = t1 - t0 + (time.perf_counter() - t1)
        q = pairwise_quality(con, "splink_clusters")
        if not best or q["f1"] > best["f1"]:  # type: ignore[operator]
            best = {**q, "threshold": threshold}
    return {"seconds": seconds, **best, "em_failed": ",".join(failed) or "none"}


def run_worker(kind: str, path: Path, memory_limit: str | None) -> dict[str, object]:
    cmd = [sys.executable, "-m", "benchmarks.er_bench", "--worker", kind, str(path)]
    env = dict(os.environ)
    if memory_limit:
        env["ER_BENCH_MEMORY_LIMIT"] = memory_limit
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def fmt(name: str, m: dict[str, object]) -> str:
    if "error" in m:
        return f"  {name:<7} failed: {m['error']}"
    extra = (
        f"  threshold={m['threshold']} em_sessions_failed={m['em_failed']}"
        if "threshold" in m
        else f"  pairs={m['candidate_pairs']} guard_cuts={m['links_cut']}"
    )
    return (f"  {name:<7} precision={m['precision']:.4f}  recall={m['recall']:.4f}  F1={m['f1']:.4f}  "
            f"time={m['seconds']:7.2f}s  peak={m['peak_mb']:6.0f} MB{extra}")  # fmt: skip


def main(argv: list[str]) -> None:
    if argv[:1] == ["--worker"]:
        kind, path = argv[1], Path(argv[2])
        result = worker_ours(path) if kind == "ours" else worker_splink(path)
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    splink = "--no-splink" not in argv
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 1
    sizes = [int(a) for a in argv if a.isdigit() and (argv.index(a) == 0 or argv[argv.index(a) - 1] != "--seed")] or [10_000]
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="er-bench-") as tmp:
            t = time.perf_counter()
            base = Path(tmp) / "base.duckdb"
            build_db(base, n, seed)
            print(f"rows={n}  (generated and staged in {time.perf_counter() - t:.1f}s; true pairs counted from entity ids)")
            copy = Path(tmp) / "ours.duckdb"
            copy.write_bytes(base.read_bytes())
            print(fmt("ours", run_worker("ours", copy, None)), flush=True)
            if splink:
                copy = Path(tmp) / "splink.duckdb"
                copy.write_bytes(base.read_bytes())
                print(fmt("splink", run_worker("splink", copy, None)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
