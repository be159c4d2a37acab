"""The core is a library: no Typer or Rich in it; the CLI module stays light at import time."""

from __future__ import annotations

import subprocess
import sys

BLOCK = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked: ' + name)
        return None
sys.meta_path.insert(0, Blocker())
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_core_imports_neither_typer_nor_rich():
    code = BLOCK.format(blocked={"typer", "rich", "click"}) + (
        "import kaleyra_cli.settings, kaleyra_cli.message, kaleyra_cli.client, kaleyra_cli.errors, kaleyra_cli.config_file\n"
        "from kaleyra_cli import KaleyraClient, build_reply, ReplyRequest\n"
        "r, p = build_reply(to='+919876543210', body='hi')\n"
        "assert r is not None\n"
        "print('ok')"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_cli_import_does_not_import_httpx_or_phonenumbers():
    code = (
        "import sys, kaleyra_cli.cli\n"
        "heavy = sorted(m for m in ('httpx', 'phonenumbers', 'uvicorn', 'rich.table', 'dotenv', 'tomli_w') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
