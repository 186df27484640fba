"""The README and docs/ stay true: the README is a short front door that opens with its two
commands, every command shown in README.md and docs/*.md runs as written, the library example
runs, and every relative link lands on an existing file and heading."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README_PATH = ROOT / "README.md"
README = README_PATH.read_text(encoding="utf-8")
# The pages the README's sections moved to, in the order the sections had there.
MADE = ("api", "app", "cli", "verifying", "reports", "durability", "library", "benchmarks",
        "testing", "dependencies", "deployment", "architecture")  # fmt: skip
ORDER = {f"{name}.md": at for at, name in enumerate(MADE)}
DOCS = sorted((ROOT / "docs").glob("*.md"), key=lambda p: (ORDER.get(p.name, len(MADE)), p.name))
PAGES = [README_PATH, *DOCS]
TEXTS = {path: path.read_text(encoding="utf-8") for path in PAGES}
EVERYTHING = "\n".join(TEXTS.values())
# How many `.venv/bin/timebank` lines README.md alone held before docs/ took most of them.
COMMANDS_BEFORE_THE_MOVE = 17


def without_fences(text: str) -> str:
    """The text with fenced code blocks blanked out, line for line."""
    kept: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            kept.append("")
        else:
            kept.append("" if fenced else line)
    return "\n".join(kept)


def outside_code(text: str) -> str:
    """The text with fenced code blocks and inline code spans blanked out."""
    return re.sub(r"`[^`\n]*`", "", without_fences(text))


def headings(text: str) -> list[str]:
    return re.findall(r"^#{1,6} +(.+?) *#*$", without_fences(text), re.M)


def slugs(text: str) -> set[str]:
    """GitHub's anchors for a Markdown file's headings (a repeated one gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in headings(text):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        plain = re.sub(r"[^\w\- ]", "", plain.strip().lower()).replace(" ", "-")
        count = seen.get(plain, 0)
        seen[plain] = count + 1
        found.add(plain if count == 0 else f"{plain}-{count}")
    return found


def commands() -> list[tuple[Path, str]]:
    """Every `.venv/bin/timebank` line in README.md and docs/*.md, in the order of PAGES."""
    return [
        (path, line.split("#")[0].strip())
        for path, text in TEXTS.items()
        for line in text.splitlines()
        if line.startswith(".venv/bin/timebank ")
    ]


def test_readme_opens_with_the_two_commands_and_they_are_executable() -> None:
    lines = README.splitlines()
    assert lines[0].startswith("# ") and lines[1] == "" and lines[2] == "```sh", lines[:3]
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None and README.index("```sh") < README.index("\n## ")
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["./scripts/run", "./scripts/test"]
    for command in commands:
        path = ROOT / command
        assert path.is_file() and os.access(path, os.X_OK)
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_is_a_front_door() -> None:
    assert len(README.splitlines()) <= 160
    for name in MADE:
        page = ROOT / "docs" / f"{name}.md"
        assert page.is_file(), page
        lines = page.read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# ") and lines[1] == "", page
        assert "(../README.md)" in lines[2], (page, "its summary links back to the README")
        assert f"(docs/{name}.md)" in README, (name, "the README links to it")


def test_every_relative_link_resolves() -> None:
    bad: list[str] = []
    for path, text in TEXTS.items():
        for target in re.findall(r"\]\(([^)\s]+)(?: \"[^\"]*\")?\)", outside_code(text)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            name, _, anchor = target.partition("#")
            linked = (path.parent / name).resolve() if name else path
            where = f"{path.relative_to(ROOT)}: {target}"
            if not linked.exists():
                bad.append(f"{where} (no such file)")
            elif (
                anchor
                and linked.suffix == ".md"
                and anchor not in slugs(linked.read_text(encoding="utf-8"))
            ):
                bad.append(f"{where} (no such heading)")
    assert not bad, "\n".join(bad)


def test_readme_library_example_runs(tmp_path: Path) -> None:
    block = re.search(r"## Using the ledger as a library.*?```python\n(.*?)```", EVERYTHING, re.S)
    assert block is not None
    body = textwrap.indent(block.group(1), "    ")
    source = f"async def example():\n{body}\n    return receipt\n"
    namespace: dict[str, object] = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(source, "docs/library.md", "exec"), namespace)
        receipt = asyncio.run(namespace["example"]())  # type: ignore[operator]
    finally:
        os.chdir(cwd)
    from ledger import Receipt, receipt_problem

    assert isinstance(receipt, Receipt)
    assert receipt_problem(receipt, receipt.keys) is None
    assert (tmp_path / "hours.db").exists()


def test_readme_cli_examples_run_and_succeed(tmp_path: Path) -> None:
    lines = commands()
    assert len(lines) >= COMMANDS_BEFORE_THE_MOVE, len(lines)
    cli = [sys.executable, "-m", "main.cli"]
    demo = subprocess.run(
        [*cli, "demo", "--db", str(tmp_path / "demo.db"), "--entries", "200"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    for path, line in lines:
        words = shlex.split(line.replace("var/", f"{tmp_path}/"))
        out = None
        if ">" in words:
            at = words.index(">")
            out, words = words[at + 1], words[:at]
        done = subprocess.run([*cli, *words[1:]], capture_output=True, text=True, check=False)
        assert done.returncode == 0, (path.name, line, done.stderr)
        if out is not None:
            Path(out).write_text(done.stdout, encoding="utf-8")


def test_readme_keeps_every_section_the_brief_asks_for() -> None:
    found = {heading for text in TEXTS.values() for heading in headings(text)}
    for wanted in ("The ledger", "The HTTP API", "Personal data", "Configuration", "The CLI",
                   "Verifying the ledger", "Benchmarks", "Tests", "Dependencies", "PostgreSQL",
                   "Layout"):  # fmt: skip
        assert wanted in found, wanted
    for words in ("**Auth.**", "**Roles, per scheme.**", "**Errors**", "**Idempotency.**",
                  "**Pagination.**", "**Append-only in the database too.**"):  # fmt: skip
        assert words in EVERYTHING, words
