"""Settings: defaults with no file, TOML overrides, clear errors, `necoma config show`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from necoma.config import ConfigError, Settings, describe, load_settings


def test_defaults_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NECOMA_CONFIG", raising=False)
    s = load_settings()
    assert s.data_dir == Path("necoma-data")
    assert s.lake_path == Path("necoma-data/lake")


def test_toml_overrides_and_env_var(tmp_path, monkeypatch):
    cfg = tmp_path / "n.toml"
    cfg.write_text('data_dir = "/srv/necoma"\n[lake]\nbatch_rows = 1000\n[collect]\nnetflow = ["127.0.0.1:2055"]\n')
    monkeypatch.setenv("NECOMA_CONFIG", str(cfg))
    s = load_settings()
    assert s.lake.batch_rows == 1000 and s.lake_path == Path("/srv/necoma/lake")
    assert s.collect.netflow == ["127.0.0.1:2055"]


@pytest.mark.parametrize("text,needle", [
    ("[lake\n", "not valid TOML"),
    ("[lake]\nbatch_rows = 0\n", "lake.batch_rows"),
    ("[lake]\nbatch_row = 5\n", "lake.batch_row"),
])
def test_bad_config_names_the_problem(tmp_path, text, needle):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_settings(cfg)


def test_every_setting_is_documented():
    for key, _, doc in describe(Settings()):
        assert doc, f"setting {key} has no description"


def test_config_show_cli(tmp_path):
    cfg = tmp_path / "n.toml"
    cfg.write_text('[lake]\nbatch_rows = 1234\n')
    out = subprocess.run([sys.executable, "-m", "necoma.cli.main", "--config", str(cfg), "config", "show", "--json"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["lake"]["batch_rows"] == 1234
    bad = subprocess.run([sys.executable, "-m", "necoma.cli.main", "--config", str(tmp_path / "nope.toml"),
                          "config", "show"], capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
