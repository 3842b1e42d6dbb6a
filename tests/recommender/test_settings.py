"""One Settings for the command line and the API: defaults, ``RECOMMENDER_*`` variables, what
``recommender serve`` hands its workers (including the multiprocess metrics folder), and that no
other module reads the environment."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from recommender.cli import app as cli
from recommender.cli.serve_commands import machine_cores
from recommender.domain import DISTRICT_TIMEZONE
from recommender.settings import (
    Settings,
    SettingsError,
    key_fingerprint,
    load_settings,
    parse_api_grants,
)
from tests.conftest import ROOT

VARIABLES = (*Settings.model_construct().variables(), "prometheus_multiproc_dir")


@pytest.fixture
def env(monkeypatch):
    """No setting variable set; whatever a test (or the CLI's export) sets is undone after."""
    for name in VARIABLES:
        monkeypatch.setenv(name, "")  # records the original value, so teardown restores it
        monkeypatch.delenv(name)
    return monkeypatch


def test_defaults(env):
    s = Settings()
    assert s.database_url is None and s.artifacts_dir == Path("artifacts")
    assert s.timezone == DISTRICT_TIMEZONE
    assert s.key_roles() == {} and not s.insecure_dev
    assert s.prometheus_multiproc_dir is None


def test_variables_are_read(env, tmp_path):
    env.setenv("RECOMMENDER_DATABASE_URL", "postgresql+psycopg://db/district")
    env.setenv("RECOMMENDER_TIMEZONE", "Europe/Lisbon")
    env.setenv("RECOMMENDER_INSECURE_DEV", "1")
    env.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    s = Settings()
    assert s.database_url == "postgresql+psycopg://db/district"
    assert s.timezone == "Europe/Lisbon" and s.insecure_dev
    assert s.prometheus_multiproc_dir == tmp_path
    env.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    assert Settings().prometheus_multiproc_dir is None


def test_an_unknown_time_zone_is_refused(env):
    env.setenv("RECOMMENDER_TIMEZONE", "Asia/Atlantis")
    with pytest.raises(ValidationError, match="RECOMMENDER_TIMEZONE.*Asia/Atlantis"):
        Settings()


def test_export_round_trips_through_the_variables(env, tmp_path):
    s = Settings(database_url="sqlite:///x.db", artifacts_dir=tmp_path / "art",
                 api_keys="platform:p1,admin:a1", insecure_dev=True, timezone="Europe/Paris",
                 prometheus_multiproc_dir=tmp_path / "metrics")
    s.export()
    assert Settings() == s
    # A field that is None unsets its variable.
    Settings(api_keys="admin:a2", database_url=None, prometheus_multiproc_dir=None,
             insecure_dev=False).export()
    again = Settings()
    assert again.database_url is None and again.prometheus_multiproc_dir is None
    assert again.key_roles() == {"a2": "admin"} and not again.insecure_dev


def test_no_other_module_reads_the_environment():
    reads = re.compile(r"\b(environ|getenv)\b")
    offenders = [f"{path.relative_to(ROOT)}:{n}"
                 for folder in ("recommender", "api", "features", "models")
                 for path in sorted((ROOT / folder).rglob("*.py"))
                 if path != ROOT / "recommender" / "settings.py"
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if reads.search(line)]
    assert not offenders, offenders


# -- recommender serve: what the workers are started with -------------------------------------


@pytest.fixture
def uvicorn_calls(env, tmp_path, monkeypatch):
    """Replace the start of the workers (``serve_in_workers``); each call records its
    arguments, the Settings a worker would build at that moment, and the metrics folder's
    content. ``serve`` opens the store before it starts the workers, so the tests run in a
    folder of their own (the default database and relative URLs land there)."""
    from recommender.cli import serve_commands

    monkeypatch.chdir(tmp_path)

    calls = []

    def run(app, host, port, workers, log=print, **kwargs):
        settings = Settings()
        folder = settings.prometheus_multiproc_dir
        calls.append({"app": app, "host": host, "port": port, "workers": workers, **kwargs,
                      "settings": settings, "folder_files": None if folder is None else sorted(
                          p.name for p in folder.iterdir())})
        return 0

    env.setattr(serve_commands, "serve_in_workers", run)
    return calls


def test_serve_hands_flags_and_variables_to_its_workers(uvicorn_calls, env, tmp_path):
    env.setenv("RECOMMENDER_API_KEYS", "platform:p1")
    env.setenv("RECOMMENDER_ARTIFACTS_DIR", str(tmp_path / "from-env"))
    result = CliRunner().invoke(cli, ["serve", "--db", "sqlite:///flag.db", "--port", "8123",
                                      "--timezone", "Europe/Paris", "--workers", "2"])
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_calls
    assert (call["app"], call["factory"], call["workers"], call["port"]) == (
        "api.main:create_app", True, 2, 8123)
    worker = call["settings"]
    assert worker.database_url == "sqlite:///flag.db"  # the flag
    assert worker.artifacts_dir == tmp_path / "from-env"  # the variable, no flag given
    assert worker.timezone == "Europe/Paris" and worker.key_roles() == {"p1": "platform"}
    # More than one worker: a fresh, empty folder for their metrics, removed afterwards.
    folder = worker.prometheus_multiproc_dir
    assert folder is not None and call["folder_files"] == []
    assert not folder.exists()


def test_serve_empties_a_configured_metrics_folder(uvicorn_calls, env, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_4242.db").write_bytes(b"stale")
    (folder / "keep.txt").write_text("not a metrics file")
    env.setenv("RECOMMENDER_API_KEYS", "platform:p1")
    env.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    result = CliRunner().invoke(cli, ["serve", "--artifacts", str(tmp_path / "art")])
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_calls
    assert call["workers"] == machine_cores()
    assert call["settings"].prometheus_multiproc_dir == folder
    assert call["folder_files"] == ["keep.txt"]
    assert call["settings"].artifacts_dir == tmp_path / "art"


def test_serve_defaults_to_a_worker_per_core(uvicorn_calls, env):
    env.setenv("RECOMMENDER_API_KEYS", "platform:p1")
    assert CliRunner().invoke(cli, ["serve"]).exit_code == 0
    (call,) = uvicorn_calls
    assert call["workers"] == machine_cores() == len(os.sched_getaffinity(0))


def test_serve_one_worker_needs_no_metrics_folder(uvicorn_calls, env):
    result = CliRunner().invoke(cli, ["serve", "--insecure-dev", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "--insecure-dev" in result.output
    (call,) = uvicorn_calls
    assert call["settings"].prometheus_multiproc_dir is None
    assert call["settings"].insecure_dev and call["settings"].timezone == DISTRICT_TIMEZONE


def test_serve_refuses_invalid_settings(uvicorn_calls, env):
    env.setenv("RECOMMENDER_API_KEYS", "root:abc")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2 and "unknown role 'root'" in result.output
    assert "abc" not in result.output
    env.setenv("RECOMMENDER_API_KEYS", "platform:p1")
    result = CliRunner().invoke(cli, ["serve", "--timezone", "Nowhere/Land"])
    assert result.exit_code == 2 and "Nowhere/Land" in result.output
    assert uvicorn_calls == []


# -- the other commands' defaults -------------------------------------------------------------


@pytest.fixture(scope="module")
def small_district(tmp_path_factory) -> Path:
    from recommender.demo.generator import generate_district

    out = tmp_path_factory.mktemp("small-district")
    generate_district(out, residents=40, courses=10, seed=3, fmt="csv")
    return out


def test_import_and_train_default_to_the_settings(env, small_district, tmp_path):
    from recommender.data.store import open_store
    from recommender.training import recipe

    env.setenv("RECOMMENDER_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    env.setenv("RECOMMENDER_ARTIFACTS_DIR", str(tmp_path / "env-artifacts"))
    result = CliRunner().invoke(cli, ["import", str(small_district)])
    assert result.exit_code == 0, result.output
    store = open_store(f"sqlite:///{tmp_path / 'env.db'}")
    assert store.count("residents") == 40
    store.dispose()
    result = CliRunner().invoke(cli, ["import", str(small_district), "--db",
                                      f"sqlite:///{tmp_path / 'flag.db'}"])
    assert result.exit_code == 0 and (tmp_path / "flag.db").exists()

    trained = []

    def fake_train(bundle, out, seed=0, **options):
        trained.append((bundle.name, Path(out)))
        return Path(out) / "v-test"

    env.setattr(recipe, "train_artifact", fake_train)
    result = CliRunner().invoke(cli, ["train"])  # from the store in RECOMMENDER_DATABASE_URL
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "flag-artifacts")])
    assert result.exit_code == 0, result.output
    assert trained == [("store", tmp_path / "env-artifacts"),
                       ("store", tmp_path / "flag-artifacts")]


def test_a_coordinator_key_may_be_limited_to_communities(env):
    s = Settings(api_keys="coordinator@C01+C02:k1, coordinator:k2,admin:k3,platform:k4")
    grants = s.key_grants()
    assert grants["k1"].role == "coordinator"
    assert grants["k1"].communities == frozenset({"C01", "C02"})
    assert grants["k2"].communities is None and grants["k3"].communities is None
    assert s.key_roles() == {"k1": "coordinator", "k2": "coordinator", "k3": "admin",
                             "k4": "platform"}
    # the fingerprint names a key in records without being (or containing) it
    assert grants["k1"].fingerprint == key_fingerprint("k1") != grants["k2"].fingerprint
    assert len(grants["k1"].fingerprint) == 8 and "k1" not in repr(grants["k1"])


@pytest.mark.parametrize(("text", "message"), [
    ("platform@C01:secret-1", "pair 1: role 'platform' takes no community scope"),
    ("admin:a,coordinator@:secret-1", "pair 2: bad community id ''"),
    ("coordinator@C01+:secret-1", "pair 1: bad community id ''"),
    ("coordinator@all:secret-1", "pair 1: bad community id 'all'"),
    ("coordinator@C 1:secret-1", "pair 1: bad community id 'C 1'"),
    ("coordinator@C01", "pair 1: expected role:key"),
    ("coordinator@C01:secret-1,coordinator:secret-1", "pair 2: key already used"),
])
def test_a_bad_scope_is_one_line_without_the_key(env, text, message):
    with pytest.raises(ValidationError) as info:
        Settings(api_keys=text)
    error = str(info.value.errors()[0]["msg"])
    assert message in error and "\n" not in error
    assert "secret-1" not in str(info.value)
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_api_grants(text)


# -- one line for every bad setting, never a key ---------------------------------------------


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("RECOMMENDER_API_KEYS", "platform:k-secret-1,root:k-secret-2",
     "RECOMMENDER_API_KEYS: pair 2: unknown role 'root'"),
    ("RECOMMENDER_API_KEYS", "platform:k-secret-1,platform:k-secret-1",
     "RECOMMENDER_API_KEYS: pair 2: key already used"),
    ("RECOMMENDER_DATABASE_URL", "not a url", "RECOMMENDER_DATABASE_URL: not a database URL"),
    ("RECOMMENDER_DATABASE_URL", "mysql://db/x", "RECOMMENDER_DATABASE_URL: 'mysql' is not "
     "supported"),
    ("RECOMMENDER_MAX_BODY_BYTES", "lots", "RECOMMENDER_MAX_BODY_BYTES: Input should be a valid "
     "integer"),
    ("RECOMMENDER_INSECURE_DEV", "perhaps", "RECOMMENDER_INSECURE_DEV: Input should be a valid "
     "boolean"),
])
def test_a_bad_setting_is_one_line_naming_its_variable(env, variable, value, expected):
    env.setenv("RECOMMENDER_API_KEYS", "platform:k-secret-1")
    env.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    line = str(info.value)
    assert line.startswith(expected) and "\n" not in line
    assert "k-secret" not in line and info.value.__cause__ is None


def test_whereabouts_say_absolute_places_and_which_are_defaults(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = load_settings().whereabouts()
    assert line == (f"database sqlite:///{tmp_path / 'var' / 'recommender.db'} (default); "
                    f"artifacts {tmp_path / 'artifacts'} (default)")
    env.setenv("RECOMMENDER_DATABASE_URL", "postgresql+psycopg://u:pass-word@db:5432/district")
    line = load_settings(artifacts_dir=Path("models")).whereabouts()
    assert line == ("database postgresql+psycopg://u:***@db:5432/district; "
                    f"artifacts {tmp_path / 'models'}")


UNREACHABLE = "postgresql+psycopg://postgres:pw-secret@127.0.0.1:9/nowhere"


@pytest.mark.parametrize(("command", "url", "expected"), [
    (["serve"], "oracle://db/x", "error: --db: 'oracle' is not supported"),
    (["serve"], UNREACHABLE, "error: database postgresql+psycopg://postgres:***@127.0.0.1:9/"
     "nowhere is unavailable: connection failed"),
    (["import", "."], UNREACHABLE, "is unavailable: connection failed"),
    (["train"], UNREACHABLE, "is unavailable: connection failed"),
])
def test_a_bad_or_unreachable_database_is_one_line(uvicorn_calls, env, command, url, expected):
    env.setenv("RECOMMENDER_API_KEYS", "platform:p1")
    result = CliRunner().invoke(cli, [*command, "--db", url])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output and "pw-secret" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: ")
    assert uvicorn_calls == []


def test_serve_says_where_its_data_are(uvicorn_calls, env, tmp_path):
    env.setenv("RECOMMENDER_API_KEYS", "platform:p1")
    db = tmp_path / "here.db"
    result = CliRunner().invoke(cli, ["serve", "--db", f"sqlite:///{db}", "--artifacts",
                                      str(tmp_path / "art")])
    assert result.exit_code == 0, result.output
    assert f"database sqlite:///{db}; artifacts {tmp_path / 'art'}" in result.output
    assert "no model at" in result.output  # nothing trained there yet
    assert len(uvicorn_calls) == 1


@pytest.mark.parametrize(("keys", "url", "expected"), [
    ("admin:a-secret", None, "RECOMMENDER_API_KEYS has no platform key"),
    ("platform:a-secret,owner:b-secret", None, "RECOMMENDER_API_KEYS: pair 2: unknown role"),
    ("", UNREACHABLE, "is unavailable: connection failed"),
])
def test_demo_checks_keys_and_database_before_any_work(env, tmp_path, keys, url, expected):
    env.setenv("RECOMMENDER_API_KEYS", keys)
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--no-serve", "--artifacts", str(tmp_path / "art")]
    result = CliRunner().invoke(cli, [*args, "--db", url or f"sqlite:///{tmp_path / 'd.db'}"])
    assert result.exit_code == 2 and expected in result.output, result.output
    assert "Traceback" not in result.output and "secret" not in result.output
    assert not out.exists() and "1/3" not in result.output  # nothing generated


def test_demo_without_serving_prints_no_serving_instructions(env, tmp_path, monkeypatch):
    from recommender.training import recipe

    trained = []
    monkeypatch.setattr(recipe, "train_artifact",
                        lambda bundle, out, seed=0, **options:
                        trained.append(out) or Path(out) / "v")
    result = CliRunner().invoke(cli, [
        "demo", "--out", str(tmp_path / "demo"), "--residents", "40", "--courses", "10",
        "--no-serve", "--db", f"sqlite:///{tmp_path / 'd.db'}", "--artifacts",
        str(tmp_path / "art")])
    assert result.exit_code == 0, result.output
    assert trained == [tmp_path / "art"]
    assert "3/3 training" in result.output and "not served" in result.output
    for serving in ("4/4", "API keys", "curl", "/docs", "X-API-Key"):
        assert serving not in result.output


def test_the_dependency_install_shows_progress():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert len(installs) >= 2 and not any("--quiet" in line or " -q" in line for line in installs)
    assert all("--progress-bar on" in line for line in installs)
    steps = re.findall(r'@echo "== (\d)/(\d) ', makefile)
    assert steps == [("1", "3"), ("2", "3"), ("3", "3")]
