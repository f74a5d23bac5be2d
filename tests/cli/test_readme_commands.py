"""Every offline command in README.md's bash blocks runs (with a small --limit and outputs in a temporary
directory); a command left out must say why (it needs a model, the hub, a GPU, Ray or earlier runs)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from string import Template

import pytest

from rmbench.cli import main
from tests._shared import SHARED_DATA

README = Path(__file__).resolve().parents[2] / "README.md"
#: Why a command cannot run offline in a test, by a marker in the command.
NOT_OFFLINE = {
    "./my-rm": "a user's model",
    "/models/": "a user's model",
    "org/my-rm": "the hub",
    "--engine vllm": "vLLM on a GPU",
    "--executor ray": "a Ray cluster",
    "runs/": "earlier runs",
    "leaderboard build": "the board's runs (leaderboards/build.sh)",
}


def commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", lambda m: "" if m.group(0) == "\\\n" else " ", block)
        variables: dict[str, str] = {}  # NAME=value lines, and a for loop's variable at its first (cheapest) value
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if assignment := re.fullmatch(r"([A-Za-z_]\w*)=(\S+)", line):
                variables[assignment.group(1)] = assignment.group(2)
            elif loop := re.fullmatch(r"for (\w+) in (\S+).*", line):
                variables[loop.group(1)] = loop.group(2)
            elif line.startswith("rmbench "):
                found.append(Template(line).safe_substitute(variables))
    return found


OFFLINE = [c for c in commands() if not any(marker in c for marker in NOT_OFFLINE)]


def test_readme_has_offline_commands() -> None:
    assert len(OFFLINE) >= 5, OFFLINE


@pytest.mark.parametrize("command", OFFLINE)
def test_readme_command_runs(command: str, tmp_path: Path) -> None:
    if "../shared/data" in command and not SHARED_DATA.is_dir():
        pytest.skip("shared data absent")
    text = command.replace("../shared/data", str(SHARED_DATA)).replace("/tmp/", f"{tmp_path}/")
    argv = shlex.split(text)[1:]
    if argv[0] == "devtools" or ("--model" in argv and "tiny-rm" in text):
        if not (tmp_path / "tiny-rm").exists():  # the tiny-model command before the run that uses it
            assert main(["devtools", "tiny-model", str(tmp_path / "tiny-rm")]) == 0
        if argv[0] == "devtools":
            return
    if argv[0] == "run":
        argv += [] if "--limit" in argv else ["--limit", "5"]
        argv += [] if "--out" in argv else ["--out", str(tmp_path / "run")]
        argv += ["--cache", str(tmp_path / "c.sqlite"), "--no-progress"]
    assert main(argv) == 0, command
