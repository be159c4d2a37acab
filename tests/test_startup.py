"""Start-up: lazy command modules, and Typer's option coercion without Pydantic (issue 7).

``kaleyra_cli._fastparams`` replaces Typer's per-parameter coercion for ordinary values; the
parity test below runs both on a spread of values for every parameter of every command, so a
Typer upgrade that changes its rules (or a new option of an unusual type) fails here instead of
quietly behaving differently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kaleyra_cli import _fastparams


def _modules_after(argv: list[str], *, env: dict[str, str] | None = None) -> tuple[int, set[str], str]:
    """Run ``kwa ARGV`` in a fresh interpreter; return its exit code and the modules it imported."""
    code = (
        "import json, sys\n"
        "from kaleyra_cli.cli import main\n"
        f"rc = main({argv!r})\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(m for m, v in sys.modules.items() if v is not None)) + '\\n')\n"
        "sys.exit(rc)\n"
    )
    import os

    full_env = {**os.environ, **(env or {})}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=full_env)
    line = next(line for line in result.stderr.splitlines() if line.startswith("MODULES "))
    return result.returncode, set(json.loads(line.removeprefix("MODULES "))), result.stdout


def _imported(modules: set[str], *names: str) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


def test_version_imports_no_command_module_nor_rich_nor_pydantic():
    code, modules, stdout = _modules_after(["--version"])
    assert code == 0 and stdout.startswith("kwa ")
    assert _imported(modules, "kaleyra_cli.commands", "kaleyra_cli.render", "rich", "pydantic", "httpx", "phonenumbers") == []


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_alone_answers_before_typer_and_says_what_typer_says(kwa, flag):
    code = (
        "import sys\n"
        f"sys.argv = ['kwa', {flag!r}]\n"
        "from kaleyra_cli.__main__ import main\n"
        "rc = main()\n"
        "sys.stderr.write(f'typer imported: {\"typer\" in sys.modules}')\n"
        "sys.exit(rc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "typer imported: False"
    through_typer = kwa(flag)
    assert through_typer.exit_code == 0 and result.stdout == through_typer.stdout


def test_validate_imports_only_its_own_command_and_no_network_stack():
    code, modules, stdout = _modules_after(["validate", "--to", "+919876543210", "hi"])
    assert code == 0 and stdout.strip() == "valid"
    assert "kaleyra_cli.commands.validate" in modules
    assert _imported(modules, "kaleyra_cli.commands.config", "kaleyra_cli.commands.sandbox") == []
    assert _imported(modules, "httpx", "httpcore", "uvicorn", "rich", "pydantic", "click") == []


def test_dry_run_imports_neither_pydantic_nor_rich():
    code, modules, stdout = _modules_after(["reply", "--dry-run", "--to", "+919876543210", "-c", "wamid.X", "hi"])
    assert code == 0 and stdout.startswith("POST ")
    assert _imported(modules, "pydantic", "rich", "uvicorn", "kaleyra_cli.commands.config") == []


def test_a_send_skips_httpx_own_command_line_client():
    # --sandbox sends through the real stack (uvicorn in-process brings Click, not httpx's CLI).
    code, modules, stdout = _modules_after(["reply", "--sandbox", "--to", "+919876543210", "hi"])
    assert code == 0 and stdout.startswith("wamid.")
    assert "httpx" in modules
    assert _imported(modules, "httpx._main", "pygments", "pydantic") == []


def test_help_lists_every_command_in_order(kwa):
    result = kwa("--help")
    assert result.exit_code == 0, result.output
    positions = [result.stdout.index(f" {name} ") for name in ("reply", "validate", "sandbox", "config")]
    assert positions == sorted(positions)


def test_a_mistyped_command_still_gets_a_suggestion(kwa):
    result = kwa("rpely")
    assert result.exit_code == 2
    assert "Did you mean 'reply'?" in result.stderr


def test_lazy_commands_load_on_first_lookup():
    from kaleyra_cli.cli import _LazyCommands

    loads: list[str] = []
    commands = _LazyCommands({}, {"a": lambda: loads.append("a") or "A", "b": lambda: loads.append("b") or "B"})
    assert list(commands) == ["a", "b"] and "a" in commands and len(commands) == 2
    assert loads == []
    assert commands.get("b") == "B" and commands.get("zzz") is None
    assert loads == ["b"]
    commands["c"] = "C"
    assert list(commands) == ["a", "b", "c"]
    del commands["a"]
    assert list(commands) == ["b", "c"] and loads == ["b"]


# ---------------------------------------------------------------- FastCoercion parity with Typer


def _all_parameters() -> list[tuple[str, Any, Any]]:
    import typer.main

    from kaleyra_cli.cli import app

    root = typer.main.get_command(app)
    found: list[tuple[str, Any, Any]] = []

    def walk(command: Any, path: str) -> None:
        import typer._click as click_

        ctx = click_.Context(command, info_name=path)
        for param in command.get_params(ctx):
            if _fastparams.supported(param):
                found.append((f"{path} {param.opts[0] if param.opts else param.name}", param, ctx))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(root, "kwa")
    return found


PARAMETERS = _all_parameters() if hasattr(_fastparams, "install") and _fastparams.install() else []


@pytest.fixture(scope="module")
def sample_values(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    folder = tmp_path_factory.mktemp("paths")
    existing = folder / "request.json"
    existing.write_text("{}")
    return [
        None, "", "x", "-", " 5", "0", "3", "-1", "+7", "10", "11", "65535", "65536", "2.5", ".5", "1e3", "nan", "inf",
        "0x10", "٣", "json", "JSON", "yaml", "auto", "Plain", "true", "no", 0, 3, -1, 11, 2.5, True, False, b"bytes",
        str(existing), str(folder), str(folder / "missing.json"), Path(existing),
    ]


def _outcome(coercion: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        result = coercion.coerce(value, param=param, ctx=ctx)
    except Exception as exc:  # compare failures by kind and wording
        return "error:" + type(exc).__name__, str(exc)
    return type(result).__name__, repr(result)  # repr: nan equals nan


@pytest.mark.skipif(not PARAMETERS, reason="this Typer has no runtime coercion to replace")
@pytest.mark.parametrize("name,param,ctx", PARAMETERS, ids=[p[0] for p in PARAMETERS])
def test_fast_coercion_agrees_with_typer(name, param, ctx, sample_values):
    from typer._coercion import build_runtime_param

    typer_own = build_runtime_param(param.type_descriptor)
    fast = _fastparams.FastCoercion(param)
    for value in sample_values:
        assert _outcome(fast, value, param, ctx) == _outcome(typer_own, value, param, ctx), (name, value)


def test_every_command_parameter_is_covered():
    names = {name for name, _, _ in PARAMETERS}
    assert {"kwa reply --to", "kwa reply --retries", "kwa reply --output", "kwa reply --payload", "kwa sandbox serve --port"} <= names
