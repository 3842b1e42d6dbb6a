"""The layering of the code base, checked as part of the test suite.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``); this test runs import-linter
on them so that an import against the flow (``api → recommender → models → features``, and
``cli → serving → training → evaluation → data → domain`` inside ``recommender``) fails CI.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL_MODULES = {"__init__.py", "domain.py", "settings.py"}


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_recommender_top_level_holds_only_domain_and_settings_beside_the_packages():
    top = {p.name for p in (ROOT / "recommender").glob("*.py")}
    assert top == TOP_LEVEL_MODULES
    packages = {p.parent.name for p in (ROOT / "recommender").glob("*/__init__.py")}
    assert packages == {"cli", "data", "demo", "evaluation", "training", "serving"}


def test_no_code_comment_points_outside_the_repository():
    pattern = re.compile(r"\bbrief\b|§|\bissues? #?[0-9]", re.IGNORECASE)
    offenders = []
    for folder in ("recommender", "features", "models", "api", "benchmarks", "tests", "notebooks"):
        for path in [*(ROOT / folder).rglob("*.py"), *(ROOT / folder).rglob("*.ipynb")]:
            text = path.read_text(encoding="utf-8")
            offenders += [f"{path.relative_to(ROOT)}: {m.group()}" for m in pattern.finditer(text)
                          if path.name != "test_architecture.py"]
    assert not offenders, offenders
