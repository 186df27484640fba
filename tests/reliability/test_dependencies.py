"""`pip-audit` over the locked dependencies (requirements.lock): no known vulnerability.

pip-audit asks PyPI's JSON API for each pinned release's advisories (or OSV's). Where neither
answers for any package (a machine whose network reaches PyPI's package index but not those
APIs, as the development machines here), nothing could be audited: the test is skipped saying
so, never passed. Where some packages were audited, none may carry a known vulnerability.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import Figures

ROOT = Path(__file__).resolve().parents[2]
PIP_AUDIT = Path(sys.executable).parent / "pip-audit"


def _audit(service: str, out: Path) -> list[dict[str, Any]]:
    argv = [str(PIP_AUDIT), "-r", str(ROOT / "requirements.lock"), "--no-deps", "--disable-pip",
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
