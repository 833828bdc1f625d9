"""`curate publish --to DEST`: a local folder and a local S3-compatible server (moto's server mode on loopback)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate import export
from curate import publish as pub
from curate.cli import app
from tests.test_export import LISTINGS, NOW, listing


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    export.publish(LISTINGS, folder, NOW, 14, {})
    return folder


def publish_cli(exports: Path, dest: str):
    return CliRunner().invoke(app, ["publish", "--to", dest, "--exports", str(exports)])


def same_tree(release: Path, files: dict[str, bytes]) -> None:
    man = json.loads((release / "manifest.json").read_text())
    assert files["manifest.json"] == (release / "manifest.json").read_bytes()
    for entry in man["files"]:
        assert hashlib.sha256(files[entry["path"]]).hexdigest() == entry["sha256"], entry["path"]


def local_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_publish_to_a_folder_copies_the_release_manifest_last(exports, tmp_path, monkeypatch):
    writes: list[str] = []
    real = pub._filesystem

    def recording(dest: str):
        fs, root = real(dest)
        original = fs.pipe_file

        def pipe_file(path, data, **kw):
            writes.append(path.removeprefix(root + "/"))
            return original(path, data, **kw)

        monkeypatch.setattr(fs, "pipe_file", pipe_file)
        return fs, root

    monkeypatch.setattr(pub, "_filesystem", recording)
    dest = tmp_path / "site"
    result = publish_cli(exports, str(dest))
    assert result.exit_code == 0, result.output
    same_tree((exports / "current").resolve(), local_files(dest))
    assert writes[-1] == "manifest.json" and len(writes) == len(local_files(dest))
    assert "manifest.json written last" in result.output


def test_republishing_copies_only_what_changed_and_removes_what_left(exports, tmp_path):
    dest = tmp_path / "site"
    first = pub.publish_release((exports / "current").resolve(), str(dest))
    (dest / "unrelated.txt").write_text("the site's own file")
    smaller = [x for x in LISTINGS if "GB" not in x["areas"] and "IE" not in x["areas"]]
    export.publish([*smaller, listing("f", "Extra", ["NO"])], exports, NOW + dt.timedelta(hours=1), 14, {})
    second = pub.publish_release((exports / "current").resolve(), str(dest))
    assert first.copied > 0 and second.unchanged > 0 and 0 < second.copied < first.copied
    assert second.removed >= 2 and not (dest / "locations" / "GB.json").exists()  # GB and IE are gone from the release
    assert (dest / "unrelated.txt").read_text() == "the site's own file"  # never named by a manifest: untouched
    files = local_files(dest)
    files.pop("unrelated.txt")
    same_tree((exports / "current").resolve(), files)


def test_a_damaged_release_is_not_published(exports, tmp_path):
    (exports / "current" / "listings.json").write_text("[]")
    dest = tmp_path / "site"
    result = publish_cli(exports, str(dest))
    assert result.exit_code == 1 and "does not match its manifest" in " ".join(result.output.split())
    assert not (dest / "manifest.json").exists()


def test_publish_without_a_release_exits_1(tmp_path):
    result = publish_cli(tmp_path / "nothing", str(tmp_path / "site"))
    assert result.exit_code == 1 and "No current release" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3(monkeypatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="directory")
    try:
        yield endpoint
    finally:
        server.stop()


def test_publish_to_s3_on_a_local_moto_server(exports, s3):
    import boto3

    result = publish_cli(exports, "s3://directory/support")
    assert result.exit_code == 0, result.output
    client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1")
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="directory", Prefix="support/")["Contents"])
    files = {k.removeprefix("support/"): client.get_object(Bucket="directory", Key=k)["Body"].read() for k in keys}
    same_tree((exports / "current").resolve(), files)
    man = json.loads(files["manifest.json"])
    assert set(files) == {f["path"] for f in man["files"]} | {"manifest.json"}
