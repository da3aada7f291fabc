"""The README's "Use as a library" example runs verbatim."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def library_example() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Use as a library", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_library_example_runs_verbatim(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(library_example())
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    losses = re.search(r"actor loss per seed: \[(.*)\]", lines[0]).group(1).split()
    assert len(losses) == 4 and all(abs(float(x)) < 1e3 for x in losses)
    assert lines[1] == "(4, 2, 3)"
