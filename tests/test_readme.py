"""The README runs as written: its library example, CI's install and test commands, its links."""

from __future__ import annotations

import configparser
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


def readme_block(name: str) -> str:
    """The fenced block after the README's ``<!-- ci:<name>`` marker, as .ci/run reads it."""
    readme = (REPO / "README.md").read_text()
    match = re.search(rf"^<!-- ci:{name}\b[^\n]*\n```[^\n]*\n(.*?)^```", readme, re.S | re.M)
    assert match, f"README.md has no <!-- ci:{name} --> marker before a fenced block"
    return match.group(1)


def test_ci_runs_the_readmes_install_and_test_blocks():
    done = subprocess.run(
        ["bash", ".ci/run", "--dry-run"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    install = out.split("--- install (README.md) ---\n", 1)[1].split("--- test (README.md) ---\n")
    ci_install, rest = install
    ci_test = rest.split("--- end ---\n", 1)[0]
    assert ci_install == readme_block("install")
    assert ci_test == readme_block("test")
    assert 'pip install -e ".[test]"' in ci_install
    assert "python -m pytest -q" in ci_test and "ruff check ." in ci_test


def test_the_test_extra_installs_what_the_tests_need():
    """``pip install -e ".[test]"`` alone runs every test: the video and W&B tests too."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    extras = config["options.extras_require"]
    test = set(extras["test"].split())
    for extra in ("video", "wandb"):
        assert set(extras[extra].split()) <= test, extra
    requirements = (REPO / "requirements.txt").read_text().split("\n")
    assert "-e .[test]" in requirements


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_in_the_docs_point_at_files_and_headings():
    pages = [REPO / "README.md", REPO / "benchmarks/README.md", *(REPO / "docs").rglob("*.md")]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
            elif anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", file.read_text(), re.M)
                if anchor not in {slug(h) for h in headings}:
                    broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken, broken
