"""``recommender models ab start|status|stop|report`` on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from recommender.cli import app as cli
from recommender.training.artifacts import FORMAT_VERSION


@pytest.fixture
def versions(tmp_path):
    root = tmp_path / "artifacts"
    for version in ("v1", "v2"):
        (root / version).mkdir(parents=True)
        (root / version / "manifest.json").write_text(
            json.dumps({"version": version, "format": FORMAT_VERSION}))
    return root


def _ab(store, versions, *args):
    flags = ["--db", store.url] + (["--artifacts", str(versions)] if args[0] == "start" else [])
    return CliRunner().invoke(cli, ["models", "ab", *args, *flags])


def test_start_status_stop(store, versions):
    result = _ab(store, versions, "status")
    assert result.exit_code == 0 and "no experiment is running" in result.output
    result = _ab(store, versions, "start", "v1", "v2", "--share", "0.2", "--note", "trees")
    assert result.exit_code == 0, result.output
    assert "A=v1 B=v2 share of B 0.200" in result.output and "running (trees)" in result.output
    assert store.running_experiment()["started_by"].startswith("cli:")
    assert "running" in _ab(store, versions, "status").output
    again = _ab(store, versions, "start", "v1", "v2")
    assert again.exit_code == 2 and "experiment 1 is running" in again.output
    stopped = _ab(store, versions, "stop")
    assert stopped.exit_code == 0 and "stopped" in stopped.output
    status = _ab(store, versions, "status")
    assert "no experiment is running; the last one was experiment 1" in status.output
    assert _ab(store, versions, "stop").exit_code == 2


@pytest.mark.parametrize("args, message", [
    (["v1", "v9"], "version_b: unknown version 'v9'"),
    (["v1", "v2", "--share", "1"], "--share: 1.0 is not strictly between 0 and 1"),
    (["v1", "v1"], "version_b: the same version as version_a"),
])
def test_start_names_what_is_wrong(store, versions, args, message):
    result = _ab(store, versions, "start", *args)
    assert result.exit_code == 2 and message in result.output
    assert store.experiments() == []


def test_current_is_kept_as_the_version_it_names(store, versions):
    (versions / "current").symlink_to("v1")
    assert "version_b: the same version as version_a ('v1')" in _ab(
        store, versions, "start", "current", "v1").output
    result = _ab(store, versions, "start", "current", "v2")
    assert result.exit_code == 0, result.output
    assert store.running_experiment()["version_a"] == "v1"


def test_report_prints_the_table_and_json(store, versions):
    assert _ab(store, versions, "report").exit_code == 2
    exp = store.start_experiment(version_a="v1", version_b="v2", share=0.5,
                                 started_by="test")["experiment_id"]
    at = dt.datetime(2025, 3, 1, 9, 0)
    store.add_impressions([
        {"request_id": f"r{n}", "kind": "resident", "resident_id": f"R{n}", "band": "elderly",
         "experiment_id": exp, "variant": "AB"[n % 2], "model_version": "v1",
         "courses": "K1", "served_at": at} for n in range(10)])
    table = _ab(store, versions, "report", "--days", "3")
    assert table.exit_code == 0, table.output
    assert "elderly" in table.output and "B - A" in table.output and "Wilson" in table.output
    as_json = json.loads(_ab(store, versions, "report", "--json").output)
    assert as_json["variants"]["A"]["impressions"] == 5
    assert as_json["sample_ratio"]["units"] == {"A": 5, "B": 5}
    bad = _ab(store, versions, "report", "--days", "0")
    assert bad.exit_code == 2 and "--days: 0" in bad.output
    missing = _ab(store, versions, "report", "--experiment", "7")
    assert missing.exit_code == 2 and "--experiment: no experiment 7" in missing.output
