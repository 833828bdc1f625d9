"""The ``curate`` command (CONTRACT section 2).  Paths are handled here and nowhere deeper."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

# Prefect is offline here: no telemetry (set before Prefect is imported anywhere).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from curate.checking import SourceResult, check_source
from curate.settings import Settings
from curate.sources import SourceFile, SourceOptions, load_options, source_id_for

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Curate the support directory: ingest, check and publish listings.")
console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

SourcesOpt = Annotated[Path | None, typer.Option("--sources", help="Folder of curator files [default: sources/]")]
ExportsOpt = Annotated[Path | None, typer.Option("--exports", help="Folder of releases [default: exports/]")]
WarehouseOpt = Annotated[Path | None, typer.Option("--warehouse", help="DuckDB file [default: warehouse/directory.duckdb]")]


class Format(StrEnum):
    text = "text"
    json = "json"


AllowMassRemovalOpt = Annotated[
    bool,
    typer.Option(
        "--allow-mass-removal",
        help="Publish even if the release removes more than 20% of all listings, or of a location's (at least 5).",
    ),
]


def _settings(sources: Path | None, exports: Path | None, warehouse: Path | None, allow_mass_removal: bool = False) -> Settings:
    try:
        return Settings.from_env(sources_dir=sources, exports_dir=exports, warehouse_file=warehouse, allow_mass_removal=allow_mass_removal)
    except ValueError as exc:  # a bad CURATE_* value is a bad argument
        console.print(f"[red]Bad setting:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc


def _report_held(message: str) -> None:
    console.print(f"[red bold]Release held, nothing published:[/red bold] {message}", markup=True, highlight=False)


class LinkFormat(StrEnum):
    text = "text"
    jsonl = "jsonl"


links_app = typer.Typer(no_args_is_help=True, help="Link health: check web addresses the way the nightly run does.")
app.add_typer(links_app, name="links")


def _print_summary(summary: object) -> None:
    from flows.curate_run import RunSummary

    assert isinstance(summary, RunSummary)
    table = Table(title="Sources read", title_justify="left")
    for col in ("source", "rows", "accepted", "rejected", "errors", "warnings"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for s in summary.sources:
        table.add_row(
            str(s["file"]) + ("" if s["usable"] else " (not used)") + (" (unchanged)" if s.get("unchanged") else ""),
            *(str(s[k]) for k in ("rows", "accepted", "rejected", "errors", "warnings")),
        )
    out.print(table)
    for message in summary.messages:
        out.print(f"[yellow]![/yellow] {message}")
    published = (
        "release held"
        if summary.held
        else f"({summary.public_listings} public) in {summary.locations} locations ({summary.countries} countries)"
    )
    out.print(
        f"Summary: {len(summary.sources)} sources, {summary.rows_read} rows read, {summary.rows_accepted} accepted, "
        f"{summary.rows_rejected} rejected; {summary.listings} listings {published}."
    )
    links = summary.links
    if links is None:
        out.print("Links: not checked (--skip-links); statuses are from earlier runs.")
    else:
        counts = ", ".join(f"{n} {r}" for r, n in sorted(links.results.items())) or "none"
        out.print(
            f"Links: {links.checked} checked ({counts}), {links.cached} checked recently and not asked again; "
            f"{links.dead_listings} listings left out with every link dead. Report: sources/reports/links.html"
        )
    if summary.held:
        out.print("Curator reports: sources/reports/<source>.html and <source>.rejected.csv")
        return
    out.print(f"Release {summary.release_id} published at {summary.release_path} (exports/current points to it).")
    if summary.changes:
        out.print("Since the previous release: " + ", ".join(f"{n} {what}" for what, n in summary.changes.items()) + " (changes.json).")
    out.print("Curator reports: sources/reports/<source>.html and <source>.rejected.csv")


@app.command()
def run(
    sources: SourcesOpt = None,
    exports: ExportsOpt = None,
    warehouse: WarehouseOpt = None,
    skip_links: Annotated[
        bool, typer.Option("--skip-links", help="Do not check links this run; link statuses stay as the last runs left them.")
    ] = False,
    allow_mass_removal: AllowMassRemovalOpt = False,
) -> None:
    """One whole pipeline run: ingest, validate, check links, dedupe, export and publish a release.

    Exit 0: published; 1: the run failed or the release was held (mass removal); 2: bad arguments or settings.
    """
    try:
        settings = _settings(sources, exports, warehouse, allow_mass_removal)
    except ValueError as exc:  # a bad CURATE_* value
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    from flows.curate_run import configured, on_local_server

    start = dt.datetime.now(dt.UTC)
    try:
        with console.status("Running the pipeline (ingest, validate, links, dedupe, export)..."), on_local_server():
            summary = configured(settings)(settings, skip_links=skip_links)
    except Exception as exc:  # a failed run must say so and exit 1, never publish
        console.print(f"[red]The run failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    _print_summary(summary)
    out.print(f"Finished in {(dt.datetime.now(dt.UTC) - start).total_seconds():.1f} s.")
    if summary.held:
        _report_held(summary.held)
        raise typer.Exit(1)


@app.command("export")
def export_cmd(
    sources: SourcesOpt = None,
    exports: ExportsOpt = None,
    warehouse: WarehouseOpt = None,
    allow_mass_removal: AllowMassRemovalOpt = False,
) -> None:
    """Rebuild and publish a release from the warehouse without re-ingesting (exit codes as `run`)."""
    settings = _settings(sources, exports, warehouse, allow_mass_removal)
    if not settings.warehouse_file.is_file():
        console.print(f"[red]No warehouse at {settings.warehouse_file}[/red]: run `curate run` first.")
        raise typer.Exit(1)
    from curate.export import Held
    from flows.curate_export import curate_export

    try:
        with console.status("Exporting a release from the warehouse..."):
            release = curate_export.with_options(timeout_seconds=settings.flow_timeout_seconds)(settings)
    except Exception as exc:
        console.print(f"[red]The export failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    if isinstance(release, Held):
        _report_held(release.message)
        raise typer.Exit(1)
    changes = ", ".join(f"{release.counts.get(k, 0)} {k}" for k in ("added", "removed", "changed"))
    out.print(f"Release {release.release_id} published at {release.path} with {release.counts['listings']} listings ({changes}).")


@app.command("publish")
def publish_cmd(
    to: Annotated[str, typer.Option("--to", help="A folder, or an fsspec URL such as s3://bucket/directory")],
    sources: SourcesOpt = None,
    exports: ExportsOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Copy the current release to a folder or an fsspec URL, manifest.json last.

    Exit 0: copied; 1: no current release, or the copy failed.
    """
    from curate.publish import publish_release

    settings = _settings(sources, exports, warehouse)
    current = settings.exports_dir / "current"
    if not (current / "manifest.json").is_file():
        console.print(f"[red]No current release in {settings.exports_dir}[/red]: run `curate run` first.")
        raise typer.Exit(1)
    try:
        with console.status(f"Copying {current.resolve().name} to {to}...") as status:
            done = publish_release(current.resolve(), to, lambda path: status.update(f"Copying {path} to {to}..."))
    except Exception as exc:
        console.print(f"[red]The publish failed:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from exc
    out.print(
        f"Release {done.release_id} published to {to}: {done.copied} files copied, {done.unchanged} unchanged, "
        f"{done.removed} no longer in the release removed; manifest.json written last."
    )


def _options_for(path: Path, sources_dir: Path) -> SourceOptions:
    toml = sources_dir / "sources.toml"
    if toml.is_file():
        try:
            return load_options(toml.read_text(encoding="utf-8")).get(source_id_for(path), SourceOptions())
        except Exception:  # a broken sources.toml is reported by `curate run`; check with defaults
            return SourceOptions()
    return SourceOptions()


def _check_one(path: Path, sources_dir: Path, today: dt.date) -> SourceResult:
    from curate.ingest import read_local
    from curate.problems import problem

    sid = source_id_for(path)
    source = SourceFile(path, sid, _options_for(path, sources_dir))
    try:
        data, refused = read_local(source, Settings().max_source_bytes)
    except OSError as exc:
        r = SourceResult(sid, path.name, "")
        r.problems.append(problem(sid, path.name, "unreadable_file", detail=exc.strerror or str(exc)))
        return r
    if data is None:
        assert refused is not None
        return refused
    return check_source(data, path.name, sid, source.options, today, source.format)


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="Curator files to check.")],
    format: Annotated[Format, typer.Option("--format", help="text or json")] = Format.text,
    sources: SourcesOpt = None,
    exports: ExportsOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Check curator files without ingesting anything: every problem with row, column, value and fix.

    Exit 0: all rows valid; 1: some rows invalid; 2: a file could not be used.
    """
    settings = _settings(sources, exports, warehouse)
    today = dt.datetime.now(dt.UTC).date()
    results = [_check_one(p, settings.sources_dir, today) for p in files]
    if format is Format.json:
        doc = {
            "files": [
                {
                    "file": str(p),
                    "source": r.source_id,
                    "rows": r.rows_read,
                    "valid_rows": r.rows_accepted,
                    "problems": [{k: v for k, v in x.as_dict().items() if k not in ("source", "file")} for x in r.problems],
                }
                for p, r in zip(files, results, strict=True)
            ]
        }
        out.print_json(json.dumps(doc, ensure_ascii=False)) if sys.stdout.isatty() else print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        for p, r in zip(files, results, strict=True):
            head = f"{p}: {r.rows_read} rows, {r.rows_accepted} valid" if r.usable else f"{p}: cannot be used"
            out.print(f"[bold]{head}[/bold]", markup=True)
            for x in r.problems:
                where = f"row {x.row}" if x.row is not None else "file"
                col = f", column {x.column}" if x.column else ""
                out.print(f"  {where}{col}: {x.severity}: {x.message}  Fix: {x.fix}", markup=False)
    if any(not r.usable for r in results):
        raise typer.Exit(2)
    if any(r.rows_rejected for r in results):
        raise typer.Exit(1)


def _read_urls(file: str) -> list[str]:
    """One URL a line; blank lines and lines starting with # are left out."""
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8", errors="replace")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@links_app.command("check")
def links_check(
    file: Annotated[str, typer.Argument(help="A file of URLs, one a line; - or nothing for standard input.")] = "-",
    format: Annotated[LinkFormat, typer.Option("--format", help="text, or jsonl: one JSON object a URL")] = LinkFormat.text,
    allow_private_hosts: Annotated[
        bool, typer.Option("--allow-private-hosts", help="Also request private, loopback and link-local addresses.")
    ] = False,
) -> None:
    """Check URLs as the nightly run does (HEAD then GET, redirects, retries, per-host limits); always exit 0.

    Each URL gets one result: ok, redirect, broken, blocked, error or skipped (CONTRACT section 6).
    """
    from dataclasses import replace

    from curate.links import check_links, conclude_offline

    try:
        limits = Settings.from_env().links
        urls = list(dict.fromkeys(_read_urls(file)))
    except (OSError, ValueError) as exc:
        console.print(f"[red]Cannot read the URLs:[/red] {exc}")
        raise typer.Exit(2) from exc
    limits = replace(limits, allow_private_hosts=limits.allow_private_hosts or allow_private_hosts)
    if console.is_terminal and urls:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("Checking links"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
            job = bar.add_task("links", total=len(urls))
            checks = check_links(urls, limits, on_result=lambda _: bar.advance(job))
    else:
        checks = check_links(urls, limits)
    checks, offline = conclude_offline(checks, limits)
    for c in checks:
        if format is LinkFormat.jsonl:
            print(json.dumps(c.public(), ensure_ascii=False))
        else:
            status = str(c.http_status or "-")
            tail = f" -> {c.final_url}" if c.final_url and c.final_url != c.url else ""
            why = f"  ({c.error})" if c.error else ""
            print(f"{c.result:8} {status:>3}  {c.url}{tail}{why}")
    if offline:
        console.print(f"[yellow]![/yellow] {offline}.")


@app.command()
def serve(
    sources: SourcesOpt = None,
    exports: ExportsOpt = None,
    warehouse: WarehouseOpt = None,
    port: Annotated[int, typer.Option("--port", help="Port of the local Prefect server started when PREFECT_API_URL is unset.")] = 4200,
) -> None:
    """Nightly schedule (curate-nightly) and inbox watching (curate-inbox) on a Prefect server, until stopped.

    Uses the server at PREFECT_API_URL, or starts one on 127.0.0.1 (database under PREFECT_HOME, else next to the
    warehouse) and stops it on exit.  Exit 2: a bad CURATE_CRON or CURATE_TZ; 1: the server could not be started.
    """
    import logging

    from curate.serve import ServeError, check_schedule
    from curate.serve import serve as run_serve

    settings = _settings(sources, exports, warehouse)
    try:
        check_schedule(settings.cron, settings.timezone)
    except ServeError as exc:
        console.print(f"[red]Bad setting:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not every API call
    api_url = os.environ.get("PREFECT_API_URL") or None
    home = Path(os.environ["PREFECT_HOME"]) if os.environ.get("PREFECT_HOME") else settings.warehouse_file.parent / "prefect"
    where = api_url or f"a local Prefect server on http://127.0.0.1:{port} (database under {home})"
    console.print(
        f"Serving curate-nightly ({settings.cron}, {settings.timezone}) and curate-inbox (watching {settings.sources_dir}) on {where}. "
        "Stop with Ctrl-C.",
        markup=False,
        highlight=False,
    )
    try:
        run_serve(settings, api_url, home, port)
    except ServeError as exc:
        console.print(f"[red]curate serve stopped:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
    console.print("curate serve stopped.", markup=False)


@app.command()
def status(
    sources: SourcesOpt = None,
    exports: ExportsOpt = None,
    warehouse: WarehouseOpt = None,
    runs: Annotated[int, typer.Option("--runs", min=1, help="How many recent runs to show.")] = 10,
    format: Annotated[Format, typer.Option("--format", help="text or json")] = Format.text,
) -> None:
    """The last runs with their outcome, the current release and its counts, and the next scheduled run (exit 0)."""
    from prefect.settings import PREFECT_API_URL

    from curate.status import gather

    settings = _settings(sources, exports, warehouse)
    api = PREFECT_API_URL.value() or None
    st = gather(settings.warehouse_file, settings.exports_dir, settings.cron, settings.timezone, api, dt.datetime.now(dt.UTC), runs)
    if format is Format.json:
        print(json.dumps(st.as_dict(), indent=2, default=str))
        return
    if st.running:
        out.print(f"[bold yellow]Running now:[/bold yellow] {st.running}", markup=True)
    table = Table(title="Last runs", title_justify="left")
    for col in ("run", "started (UTC)", "finished (UTC)", "outcome", "release", "sources", "rows", "rejected"):
        table.add_column(col, justify="right" if col in ("sources", "rows", "rejected") else "left")
    for r in st.runs:
        finished = r.finished_at.isoformat(sep=" ", timespec="seconds") if r.finished_at else "-"
        colour = {"published": "green", "held": "yellow"}.get(r.outcome, "red" if r.outcome.startswith("failed") else "")
        shown = f"[{colour}]{r.outcome}[/{colour}]" if colour else r.outcome
        table.add_row(r.run_id, r.started_at.isoformat(sep=" ", timespec="seconds"), finished, shown, r.release_id or "-",
                      str(r.sources), str(r.rows), str(r.rejected))  # fmt: skip
    if st.runs:
        out.print(table)
    else:
        out.print(f"Last runs: {st.runs_note}")
    if st.release:
        counts = st.release.get("counts") or {}
        shown_counts = ", ".join(f"{v} {k}" for k, v in counts.items())
        out.print(f"Current release: {st.release['release_id']} (generated {st.release['generated_at']}): {shown_counts}")
    else:
        out.print(f"Current release: none in {settings.exports_dir}")
    out.print(f"Schedule: curate-nightly at {st.schedule}")
    out.print(f"Next scheduled run: {st.next_run}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
