"""ruff (configured in pyproject.toml) finds nothing, and every `# noqa` says why."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff() -> str:
    path = Path(sys.executable).parent / "ruff"
    found = str(path) if path.exists() else shutil.which("ruff")
    assert found, "ruff is not installed: uv sync --frozen (the dev group has it)"
    return found


def test_ruff_is_clean():
    result = subprocess.run([ruff(), "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_noqa_names_its_rule_and_reason():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    bare = []
    for name in tracked:
        if name == "tests/test_lint.py":
            continue   # this file names the marker it looks for
        for number, line in enumerate((ROOT / name).read_text().splitlines(), start=1):
            if "# noqa" in line and not re.search(r"# noqa: [A-Z]+\d+\S* - \S", line):
                bare.append(f"{name}:{number}: {line.strip()}")
    assert not bare, "write `# noqa: RULE - why`:\n" + "\n".join(bare)
