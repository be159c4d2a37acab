"""Every config subcommand explains itself, and registering them keeps ``import kaleyra_cli.cli`` cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

SUBCOMMANDS = ["init", "set", "get", "unset", "show", "path", "profiles", "use"]


def test_config_lists_every_subcommand(kwa):
    result = kwa("config", "--help")
    assert result.exit_code == 0, result.output
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help_and_examples(kwa, name):
    result = kwa("config", name, "--help")
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.stdout
    assert f"kwa config {name}" in result.stdout
    if name not in ("path", "use"):
        assert "--profile" in result.stdout
    assert "--config" in result.stdout


def test_config_without_subcommand_shows_help(kwa):
    result = kwa("config")
    assert "Usage" in result.stdout + result.stderr


def test_importing_the_cli_loads_no_heavy_module():
    code = (
        "import sys, kaleyra_cli.cli\n"
        "heavy = ('rich', 'httpx', 'phonenumbers', 'tomli_w', 'platformdirs', 'dotenv', 'uvicorn')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_settings_module_imports_no_cli_library():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('typer', 'click', 'rich'): raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import kaleyra_cli.settings as s\n"
        "assert s.check_setting_value('pod', 'SG', s.Source('test'))[0] == 'sg'\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr
