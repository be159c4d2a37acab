"""Shell completion (issue 7): the shipped scripts match the commands, and completion works.

Three ways are tested: Typer's dynamic protocol (what ``kwa --install-completion`` installs:
the shell calls kwa with ``_KWA_COMPLETE=complete_bash``, ``COMP_WORDS`` and ``COMP_CWORD``),
the generated static scripts in ``completions/`` driven in a real bash (and in fish and zsh
when they are installed), and ``kwa --install-completion bash`` end to end into a temp HOME.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPLETIONS = ROOT / "completions"
COMMANDS = {"reply", "validate", "config", "sandbox"}
REPLY_OPTIONS = {"--to", "--to-wa-id", "--context", "-c", "--body", "--body-file", "--payload", "--dry-run", "--sandbox", "--json", "--output"}

# (command line words, the word being completed) -> what must be offered (a subset, or exactly with "=")
CASES: list[tuple[list[str], set[str], bool]] = [
    (["kwa", ""], COMMANDS, True),
    (["kwa", "re"], {"reply"}, True),
    (["kwa", "reply", "-"], REPLY_OPTIONS, False),
    (["kwa", "reply", "--to", "+919876543210", "--con"], {"--context", "--config"}, False),
    (["kwa", "reply", "-o", ""], {"auto", "table", "json", "plain"}, True),
    (["kwa", "reply", "--pod", ""], {"in", "sg", "eu", "na"}, True),
    (["kwa", "reply", "--wa-source", "sh"], {"shopify"}, True),
    (["kwa", "validate", "--t"], {"--to", "--to-wa-id"}, False),
    (["kwa", "config", ""], {"init", "set", "get", "unset", "show", "path", "profiles", "use"}, True),
    (["kwa", "sandbox", ""], {"serve", "numbers"}, True),
    (["kwa", "sandbox", "serve", "--p"], {"--port"}, True),
]
IDS = [" ".join(words) for words, _, _ in CASES]


def _generator():
    """scripts/gen_completions.py as a module (it is a repository script, not part of the package)."""
    if "gen_completions" in sys.modules:
        return sys.modules["gen_completions"]
    spec = importlib.util.spec_from_file_location("gen_completions", ROOT / "scripts" / "gen_completions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_completions"] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def _check(offered: set[str], expected: set[str], exact: bool) -> None:
    if exact:
        assert offered == expected
    else:
        assert expected <= offered, sorted(expected - offered)


# ---------------------------------------------------------------- the shipped files


def test_shipped_completions_match_the_commands():
    """Fails when a command or option changes and completions/ was not regenerated."""
    generated = _generator().render_all()
    assert sorted(generated) == ["kwa.bash", "kwa.fish", "kwa.zsh"]
    for name, text in generated.items():
        shipped = (COMPLETIONS / name).read_text(encoding="utf-8")
        if shipped != text:
            diff = difflib.unified_diff(shipped.splitlines(), text.splitlines(), f"completions/{name}", "generated", lineterm="", n=0)
            pytest.fail(f"completions/{name} is out of date: run python scripts/gen_completions.py and commit completions/ with the change\n" + "\n".join(list(diff)[:20]))


def test_generator_check_mode_reports_drift(tmp_path):
    gen = _generator()
    assert gen.main(["--out", str(tmp_path)]) == 0  # writes the three files
    assert gen.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "kwa.fish").write_text("# stale\n")
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1


def test_every_command_and_option_is_in_every_script():
    tree = _generator().kwa_tree()
    for name in ("kwa.bash", "kwa.zsh", "kwa.fish"):
        text = (COMPLETIONS / name).read_text(encoding="utf-8")
        for cmd in tree.walk():
            assert cmd.path[-1] in text, (name, cmd.key)
            for option in cmd.options:
                for flag in option.names:
                    needle = flag if name != "kwa.fish" else (f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
                    assert needle in text, (name, cmd.key, flag)


# ---------------------------------------------------------------- Typer's dynamic protocol


@pytest.mark.parametrize("words,expected,exact", CASES, ids=IDS)
def test_dynamic_bash_completion_through_environment_variables(words, expected, exact):
    from typer.testing import CliRunner

    from kaleyra_cli.cli import app

    env = {"_KWA_COMPLETE": "complete_bash", "COMP_WORDS": " ".join(words), "COMP_CWORD": str(len(words) - 1)}
    result = CliRunner().invoke(app, [], env=env, prog_name="kwa")
    assert result.exit_code == 0, result.output
    _check(set(result.stdout.split()), expected, exact)


def test_dynamic_completion_in_a_real_process():
    env = {**os.environ, "_KWA_COMPLETE": "complete_bash", "COMP_WORDS": "kwa reply --c", "COMP_CWORD": "2"}
    result = subprocess.run([sys.executable, "-m", "kaleyra_cli"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert {"--context", "--config"} <= set(result.stdout.split())


# ---------------------------------------------------------------- real shells

BASH = shutil.which("bash")


def _bash(script: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([BASH, "--norc", "--noprofile", "-c", script], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _bash_calls(function: str) -> str:
    lines = []
    for index, (words, _, _) in enumerate(CASES):
        quoted = " ".join("'" + w + "'" for w in words)
        lines.append(f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; COMPREPLY=(); {function} kwa; echo \"{index}:${{COMPREPLY[*]}}\"")
    return "\n".join(lines)


def _by_case(output: str) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for line in output.splitlines():
        index, _, offered = line.partition(":")
        if index.isdigit():
            found[int(index)] = set(offered.split())
    return found


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_static_bash_script_in_bash():
    output = _bash(f"source completions/kwa.bash\n{_bash_calls('_kwa')}")
    found = _by_case(output)
    for index, (words, expected, exact) in enumerate(CASES):
        _check(found[index], expected, exact)


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_static_bash_script_handles_option_values_and_paths(tmp_path):
    (tmp_path / "request.json").write_text("{}")
    script = (
        f"source {COMPLETIONS / 'kwa.bash'}\ncd {tmp_path}\n"
        "t() { COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _kwa kwa; echo \"${COMPREPLY[*]}\"; }\n"
        "t kwa reply --output = js\n"  # bash splits --output=js into --output, =, js
        "t kwa reply --payload re\n"
        "t kwa reply --to ''\n"  # free text: nothing offered
        "t kwa reply -- --t\n"  # after --: the body
        "t kwa reply --to +91 --retries 3 -c wamid.X --dr\n"
    )
    assert _bash(script).splitlines() == ["json", "request.json", "", "", "--dry-run"]


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_install_completion_bash_end_to_end(tmp_path):
    """``kwa --install-completion bash`` writes Typer's script; bash then completes through kwa itself."""
    kwa = shutil.which("kwa", path=str(Path(sys.executable).parent)) or shutil.which("kwa")
    if kwa is None:
        pytest.skip("the kwa console script is not installed")
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PATH": f"{Path(kwa).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # Typer's switch for naming the shell instead of detecting it from the parent processes
        "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1",
    }
    installed = subprocess.run([kwa, "--install-completion", "bash"], env=env, capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "kwa.sh"
    assert script.is_file(), installed.stdout
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
    env.pop("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION")
    found = _by_case(_bash(f"source {script}\n{_bash_calls('_kwa_completion')}", env=env))
    for index, (words, expected, exact) in enumerate(CASES):
        _check(found[index], expected, exact)


FISH = shutil.which("fish")


@pytest.mark.skipif(FISH is None, reason="fish is not installed")
def test_static_fish_script_in_fish(tmp_path):
    (tmp_path / "request.json").write_text("{}")
    lines = [f"source {COMPLETIONS / 'kwa.fish'}", f"cd {tmp_path}"]
    cases = [*CASES, (["kwa", "reply", "--payload", ""], {"request.json"}, True), (["kwa", "reply", "--to", ""], set(), True)]
    for index, (words, _, _) in enumerate(cases):
        line = " ".join(words)
        lines.append(f"for c in (complete -C {_fish_quote(line)}); echo '{index}:'(string split -f1 \\t -- $c); end")
    result = subprocess.run([FISH, "--no-config", "-c", "\n".join(lines)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found: dict[int, set[str]] = {i: set() for i in range(len(cases))}
    for row in result.stdout.splitlines():
        index, _, value = row.partition(":")
        found[int(index)].add(value)
    for index, (words, expected, exact) in enumerate(cases):
        _check(found[index], expected, exact)


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


ZSH = shutil.which("zsh")


@pytest.mark.skipif(ZSH is None, reason="zsh is not installed")
@pytest.mark.parametrize(
    "line,expected",
    [("kwa ", COMMANDS), ("kwa reply --out", {"--output"}), ("kwa reply -o ", {"auto", "table", "json", "plain"}), ("kwa config ", {"set", "show"})],
)
def test_static_zsh_script_in_zsh(tmp_path, line, expected):
    functions = tmp_path / "functions"
    functions.mkdir()
    shutil.copy(COMPLETIONS / "kwa.zsh", functions / "_kwa")
    capture = Path(__file__).with_name("zsh_capture.zsh")
    result = subprocess.run([ZSH, str(capture), str(functions), line], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    offered = {row.replace("\r", "").split(" -- ")[0] for row in result.stdout.splitlines() if row.strip()}
    assert expected <= offered, (result.stdout, result.stderr)
