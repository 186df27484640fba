"""The README stays true: its two commands exist, and its library example runs as written."""

from __future__ import annotations

import asyncio
import os
import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_two_commands_and_they_are_executable() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None and README.index("```sh") < README.index("\n## ")
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["./scripts/run", "./scripts/test"]
    for command in commands:
        path = ROOT / command
        assert path.is_file() and os.access(path, os.X_OK)
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_library_example_runs(tmp_path: Path) -> None:
    block = re.search(r"## Using the ledger as a library.*?```python\n(.*?)```", README, re.S)
    assert block is not None
    body = textwrap.indent(block.group(1), "    ")
    source = f"async def example():\n{body}\n    return receipt\n"
    namespace: dict[str, object] = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(source, "README.md", "exec"), namespace)
        receipt = asyncio.run(namespace["example"]())  # type: ignore[operator]
    finally:
        os.chdir(cwd)
    from ledger import Receipt, receipt_problem

    assert isinstance(receipt, Receipt)
    assert receipt_problem(receipt, receipt.keys) is None
    assert (tmp_path / "hours.db").exists()


def test_readme_cli_examples_run_and_succeed(tmp_path: Path) -> None:
    import shlex
    import subprocess
    import sys

    lines = [
        line.split("#")[0].strip()
        for line in README.splitlines()
        if line.startswith(".venv/bin/timebank ")
    ]
    assert len(lines) >= 6
    cli = [sys.executable, "-m", "timebank.cli"]
    demo = subprocess.run(
        [*cli, "demo", "--db", str(tmp_path / "demo.db"), "--entries", "200"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    for line in lines:
        words = shlex.split(line.replace("var/", f"{tmp_path}/"))
        out = None
        if ">" in words:
            at = words.index(">")
            out, words = words[at + 1], words[:at]
        done = subprocess.run([*cli, *words[1:]], capture_output=True, text=True, check=False)
        assert done.returncode == 0, (line, done.stderr)
        if out is not None:
            Path(out).write_text(done.stdout, encoding="utf-8")


def test_readme_keeps_every_section_the_brief_asks_for() -> None:
    headings = re.findall(r"^## (.+)$", README, re.M)
    for wanted in ("The ledger", "The HTTP API", "Personal data", "Configuration", "The CLI",
                   "Verifying the ledger", "Benchmarks", "Tests", "Dependencies", "PostgreSQL",
                   "Layout"):  # fmt: skip
        assert wanted in headings, wanted
    for words in ("**Auth.**", "**Roles, per scheme.**", "**Errors**", "**Idempotency.**",
                  "**Pagination.**", "**Append-only in the database too.**"):  # fmt: skip
        assert words in README, words
