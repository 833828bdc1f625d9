"""`curate check`: findings, formats and exit codes as CONTRACT section 2 says."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from curate.cli import app

runner = CliRunner()
GOOD = "name,kind,url,country\nLine One,helpline,https://one.example,GB\n"
BAD = "name,kind,url,country\nLine One,helpline,https://one.example,GB\nLine Two,hepline,javascript:x,GB\nLine Three,chat,,Narnia\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_exits_0(tmp_path):
    result = runner.invoke(app, ["check", str(write(tmp_path, "good.csv", GOOD)), "--sources", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 rows, 1 valid" in result.output


def test_invalid_rows_exit_1_and_each_bad_row_is_named(tmp_path):
    result = runner.invoke(app, ["check", str(write(tmp_path, "bad.csv", BAD)), "--sources", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "row 3, column kind" in result.output and "Did you mean 'helpline'?" in result.output
    assert "row 3, column url" in result.output and "javascript:x" in result.output
    assert "row 4, column country" in result.output and "Narnia" in result.output
    assert "row 2" not in result.output


def test_json_format_has_the_contract_shape(tmp_path):
    path = write(tmp_path, "bad.csv", BAD)
    result = runner.invoke(app, ["check", str(path), "--format", "json", "--sources", str(tmp_path)])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    (f,) = doc["files"]
    assert (f["file"], f["source"], f["rows"], f["valid_rows"]) == (str(path), "bad", 3, 1)
    for p in f["problems"]:
        assert set(p) == {"row", "column", "value", "severity", "rule", "message", "fix"}
        assert p["severity"] in ("error", "warning") and p["message"] and p["fix"]
    assert {(p["row"], p["column"], p["rule"]) for p in f["problems"]} >= {
        (3, "kind", "vocabulary"),
        (3, "url", "http_url"),
        (4, "country", "country_code"),
    }


def test_unusable_file_exits_2_with_a_file_level_problem(tmp_path):
    good = write(tmp_path, "good.csv", GOOD)
    empty = write(tmp_path, "empty.csv", "")
    result = runner.invoke(app, ["check", str(good), str(empty), "--format", "json", "--sources", str(tmp_path)])
    assert result.exit_code == 2
    files = {Path(f["file"]).name: f for f in json.loads(result.stdout)["files"]}
    assert files["good.csv"]["problems"] == []
    assert [(p["row"], p["rule"]) for p in files["empty.csv"]["problems"]] == [(None, "empty_file")]


def test_missing_file_exits_2(tmp_path):
    result = runner.invoke(app, ["check", str(tmp_path / "nope.csv"), "--sources", str(tmp_path)])
    assert result.exit_code == 2
    assert "cannot be used" in result.output


def test_sources_toml_defaults_apply_to_check(tmp_path):
    write(tmp_path, "sources.toml", '[sources.nocountry]\ncountry = "NO"\nkind = "helpline"\n')
    path = write(tmp_path, "nocountry.csv", "name,phone\nLinja,116 123\n")
    result = runner.invoke(app, ["check", str(path), "--format", "json", "--sources", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"][0]["valid_rows"] == 1


def test_bad_arguments_exit_2():
    assert runner.invoke(app, ["check", "--format", "yaml", "x.csv"]).exit_code == 2
    assert runner.invoke(app, ["run", "--no-such-flag"]).exit_code == 2


def test_a_run_on_the_temporary_server_sends_no_heartbeats():
    """``curate run`` on Prefect's temporary server turns flow run heartbeats off (their thread made every run's end
    wait up to a second); on a server of its own, a run keeps them."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.curate_run import on_local_server

    with temporary_settings({PREFECT_API_URL: None, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 180}):
        with on_local_server():
            assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 180
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api", PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 180}), on_local_server():
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 180
