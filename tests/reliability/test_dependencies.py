"""No known vulnerability in the locked dependencies (requirements.lock).

Two checks over the same advisories (the PyPA advisory database, which PyPI and OSV serve):

- `pip-audit`, asking PyPI's per-release JSON API, or OSV's, for each pinned release;
- PyPI's project JSON, which lists the known vulnerabilities of a project's newest release: for
  each pin that *is* the newest release, the same answer pip-audit would have had from PyPI.

Where an answer can't be had (a machine whose network reaches PyPI's project pages but not the
per-release API or OSV, as the development machines here; a pin held behind the newest release,
as numpy is by Python 3.11), that package is counted as not audited, never as clean. A check
that could audit nothing is skipped, saying so; never passed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import Figures

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
PIP_AUDIT = Path(sys.executable).parent / "pip-audit"
PYPI = "https://pypi.org/pypi/{name}/json"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def _audit(service: str, out: Path) -> list[dict[str, Any]]:
    argv = [str(PIP_AUDIT), "-r", str(LOCK), "--no-deps", "--disable-pip",
            "--progress-spinner", "off", "--vulnerability-service", service, "--timeout", "15",
            "--format", "json", "-o", str(out)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    if not out.exists():  # the service could not be reached at all
        return []
    deps: list[dict[str, Any]] = json.loads(out.read_text())["dependencies"]
    assert deps, done.stderr
    return deps


def test_no_locked_dependency_has_a_known_vulnerability(tmp_path: Path, figures: Figures) -> None:
    audited: list[dict[str, Any]] = []
    locked = 0
    for service in ("pypi", "osv"):
        deps = _audit(service, tmp_path / f"{service}.json")
        locked = max(locked, len(deps))
        audited = [d for d in deps if "skip_reason" not in d]
        if audited:
            break
    vulnerable = {f"{d['name']} {d['version']}": [v["id"] for v in d["vulns"]]
                  for d in audited if d["vulns"]}  # fmt: skip
    figures(locked=locked, audited=len(audited), vulnerable=len(vulnerable))
    if not audited:
        pytest.skip(f"pip-audit could audit none of the {locked} locked packages: neither PyPI's "
                    "per-release JSON API nor OSV answers from this machine")  # fmt: skip
    assert vulnerable == {}, vulnerable


def locked_pins(text: str) -> dict[str, str]:
    """Name to version for every `name==version` line of a pip lock file."""
    pins = {name.lower(): version for name, version in PIN.findall(text)}
    assert pins, "no pins in the lock file"
    return pins


def test_locked_pins_are_read_from_the_lock_file_with_hashes_and_markers() -> None:
    text = "a-b==1.0 \\\n    --hash=sha256:00\nC.d==2.0rc1 ; python_version < '3.12'\n# e==3\n"
    assert locked_pins(text) == {"a-b": "1.0", "c.d": "2.0rc1"}


Projects = dict[str, dict[str, Any]]


def judged(pins: dict[str, str], projects: Projects) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(vulnerable, behind): the known vulnerabilities of each pin that is its project's newest
    release, by PyPI's project JSON; and the pins behind their newest release, not audited."""
    vulnerable: dict[str, list[str]] = {}
    behind: dict[str, str] = {}
    for name, version in sorted(pins.items()):
        newest = projects[name]["info"]["version"]
        if newest != version:
            behind[name] = f"{version} (newest {newest})"
            continue
        ids = [v["id"] for v in projects[name]["vulnerabilities"]]
        vulnerable |= {f"{name} {version}": ids} if ids else {}
    return vulnerable, behind


def test_a_newest_release_with_an_advisory_is_vulnerable_and_an_older_pin_is_not_audited() -> None:
    pins = {"jinja2": "2.10", "clean": "1.0", "old": "1.0"}
    projects: Projects = {
        "jinja2": {"info": {"version": "2.10"}, "vulnerabilities": [{"id": "PYSEC-2019-217"}]},
        "clean": {"info": {"version": "1.0"}, "vulnerabilities": []},
        "old": {"info": {"version": "2.0"}, "vulnerabilities": []},
    }
    assert judged(pins, projects) == (
        {"jinja2 2.10": ["PYSEC-2019-217"]},
        {"old": "1.0 (newest 2.0)"},
    )


def test_no_locked_release_that_is_the_newest_has_a_vulnerability_on_pypi(
    figures: Figures,
) -> None:
    pins = locked_pins(LOCK.read_text())
    projects: Projects = {}
    try:
        with httpx.Client(timeout=20, follow_redirects=True) as client:
            for name in pins:
                answer = client.get(PYPI.format(name=name))
                answer.raise_for_status()
                projects[name] = answer.json()
    except httpx.HTTPError as error:
        pytest.skip(f"PyPI's project JSON does not answer from this machine: {error!r}")
    vulnerable, behind = judged(pins, projects)
    figures(locked=len(pins), audited=len(pins) - len(behind), vulnerable=len(vulnerable),
            not_audited=behind)  # fmt: skip
    if len(behind) == len(pins):
        pytest.skip(f"every one of the {len(pins)} pins is behind its newest release: none audited")
    assert vulnerable == {}, vulnerable
