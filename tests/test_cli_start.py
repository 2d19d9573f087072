"""The `necoma` command starts without importing what its other commands need, and still lists them all."""
from __future__ import annotations

import os
import re
import subprocess
import sys

HEAVY = ("sqlalchemy", "stix2", "duckdb", "pyspark", "sklearn", "numba", "fastapi")
COMMANDS = ("query", "run", "serve", "collect", "analyze", "eval", "config", "import", "admin", "bot", "alerts",
            "testbed", "actions")


def loaded_after(code: str) -> list[str]:
    """The HEAVY top-level packages in sys.modules after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_importing_the_entry_point_loads_no_heavy_package():
    assert loaded_after("import necoma.cli.main") == []


def test_analyze_loads_neither_the_exchange_nor_scikit_learn():
    code = ("from typer.testing import CliRunner\nfrom necoma.cli.main import app\n"
            "r = CliRunner().invoke(app, ['analyze', '--list'])\nassert r.exit_code == 0, r.output\n"
            "assert 'heavy_hitter' in r.output")
    assert set(loaded_after(code)) <= {"duckdb"}  # the engine may be imported; sqlalchemy, stix2, sklearn not


def test_help_lists_every_command_with_its_help_text():
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "necoma.cli.main", "--help"], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    for name in COMMANDS:
        assert re.search(rf"│ {name} +\w.{{10,}}", out.stdout), f"{name} missing from --help:\n{out.stdout}"
    assert "Administer the exchange" in out.stdout and "Run the detectors over a time range" in out.stdout


def test_a_mistyped_command_is_still_suggested():
    out = subprocess.run([sys.executable, "-m", "necoma.cli.main", "analyz"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode != 0 and "analyze" in out.stderr
