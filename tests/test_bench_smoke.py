"""The benchmarks run end to end at a tiny size and end with their JSON line. Timing is never
asserted: these only prove the scripts work (the figures come from full-size runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parent.parent / "bench"
# A PostgreSQL server (scripts/test-postgres sets it): the benchmarks' PostgreSQL mode runs there.
SERVER_URL = os.environ.get("TIMEBANK_TEST_DATABASE_URL", "")


def _run(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) > 1, "human-readable lines come before the JSON"
    result = json.loads(lines[-1])
    assert isinstance(result, dict)
    return result


def _positive(result: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert value > 0, (key, value)


def _described(result: dict[str, Any]) -> None:
    for key in ("date", "machine", "python"):
        assert isinstance(result[key], str) and result[key], key


def test_append_benchmark_runs_and_reports(tmp_path: Path) -> None:
    result = _run(
        "ledger_append.py",
        "--entries",
        "300",
        "--single",
        "20",
        "--repeat",
        "1",
        "--dir",
        str(tmp_path),
    )
    _positive(
        result,
        "entries_per_s",
        "floor_entries_per_s",
        "ratio",
        "single_entries_per_s",
        "single_p50_ms",
        "single_p99_ms",
    )
    _described(result)
    assert result["repeat"] == 1 and len(result["grouped_runs_entries_per_s"]) == 1
    assert result["single_p50_ms"] <= result["single_p99_ms"]
    assert list(tmp_path.iterdir()) == [], "the temp databases are removed"


def test_verify_benchmark_runs_and_reports(tmp_path: Path) -> None:
    result = _run("ledger_verify.py", "--entries", "300", "--dir", str(tmp_path))
    _positive(
        result,
        "entries_per_s",
        "floor_entries_per_s",
        "ratio",
        "cryptography_verify_per_s",
        "pynacl_verify_per_s",
        "peak_rss_mb_small",
        "peak_rss_mb_large",
        "entries",
    )
    _described(result)
    assert result["entries"] == 300


def test_verify_benchmark_reuses_a_database(tmp_path: Path) -> None:
    db = tmp_path / "kept.db"
    first = _run("ledger_verify.py", "--entries", "200", "--db", str(db))
    assert first["entries"] == 200 and first["build_s"] is not None
    assert db.exists() and (tmp_path / "kept.small.db").exists()
    again = _run("ledger_verify.py", "--db", str(db))
    assert again["entries"] == 200 and again["build_s"] is None
    _positive(again, "entries_per_s", "floor_entries_per_s", "peak_rss_mb_large")


def test_api_claims_benchmark_runs_and_reports(tmp_path: Path) -> None:
    result = _run("api_claims.py", "--claims", "64", "--warmup", "8", "--dir", str(tmp_path))
    _positive(
        result,
        "claims_per_s",
        "requests_per_s",
        "p50_ms",
        "p99_ms",
        "create_p99_ms",
        "confirm_p99_ms",
        "direct_appends_per_s",
        "direct_p50_ms",
        "direct_p99_ms",
        "ratio",
    )
    _described(result)
    assert result["claims"] == 64 and result["concurrency"] == 32 and result["client"] == "raw"
    assert result["entries_verified"] == 64 + 8, "every claim confirmed became one entry"
    assert result["target_claims_per_s"] == 1000 and result["target_p99_ms"] == 100
    assert isinstance(result["meets_target"], bool)
    assert result["p50_ms"] <= result["p99_ms"]
    assert result["backend"] == "sqlite" and result["processes"] == 1
    other = _run(
        "api_claims.py", "--claims", "16", "--warmup", "0", "--client", "httpx",
        "--dir", str(tmp_path),
    )  # fmt: skip
    assert list(tmp_path.iterdir()) == [], "the temp databases are removed"
    assert other["claims"] == 16 and other["client"] == "httpx"
    assert other["entries_verified"] == 16
    _positive(other, "claims_per_s", "floor_requests_per_s", "p99_ms")


def test_redeem_benchmark_runs_and_reports(tmp_path: Path) -> None:
    result = _run("redeem.py", "--pairs", "64", "--warmup", "8", "--dir", str(tmp_path))
    _positive(
        result,
        "pairs_per_s",
        "requests_per_s",
        "p50_ms",
        "p99_ms",
        "reserve_p99_ms",
        "settle_p99_ms",
        "direct_pairs_per_s",
        "direct_p50_ms",
        "direct_p99_ms",
        "ratio",
        "server_cpu_ms_per_pair",
    )
    _described(result)
    assert result["benchmark"] == "redeem"
    assert result["pairs"] == 64 and result["concurrency"] == 32 and result["client"] == "raw"
    assert result["vouchers_settled"] == 64 + 8, "the partner's statement counts every voucher"
    assert result["entries_verified"] >= 2 * (64 + 8), "a reservation and a posting each"
    assert result["target_pairs_per_s"] == 500 and result["target_p99_ms"] == 100
    assert isinstance(result["meets_target"], bool)
    assert result["p50_ms"] <= result["p99_ms"]
    other = _run(
        "redeem.py", "--pairs", "16", "--warmup", "0", "--client", "httpx",
        "--dir", str(tmp_path),
    )  # fmt: skip
    assert list(tmp_path.iterdir()) == [], "the temp databases are removed"
    assert other["pairs"] == 16 and other["client"] == "httpx"
    assert other["vouchers_settled"] == 16
    _positive(other, "pairs_per_s", "floor_requests_per_s", "p99_ms")


def test_http_benchmarks_refuse_several_processes_on_sqlite(tmp_path: Path) -> None:
    for script in ("api_claims.py", "redeem.py"):
        done = subprocess.run(
            [sys.executable, str(BENCH / script), "--processes", "2", "--dir", str(tmp_path)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr
        assert "SQLite is one server process by design" in done.stderr, done.stderr


@pytest.mark.postgres_only
@pytest.mark.skipif(not SERVER_URL, reason="needs a PostgreSQL server (scripts/test-postgres)")
def test_http_benchmarks_run_on_postgres_with_two_processes(tmp_path: Path) -> None:
    common = ["--warmup", "4", "--database-url", SERVER_URL, "--processes", "2",
              "--dir", str(tmp_path)]  # fmt: skip
    claims = _run("api_claims.py", "--claims", "24", *common)
    assert claims["backend"] == "postgresql" and claims["processes"] == 2
    assert claims["claims"] == 24 and claims["entries_verified"] == 24 + 4
    _positive(claims, "claims_per_s", "p50_ms", "p99_ms", "direct_appends_per_s")
    pairs = _run("redeem.py", "--pairs", "24", *common)
    assert pairs["backend"] == "postgresql" and pairs["processes"] == 2
    assert pairs["vouchers_settled"] == 24 + 4
    assert pairs["entries_verified"] >= 2 * (24 + 4)
    _positive(pairs, "pairs_per_s", "p50_ms", "p99_ms", "direct_pairs_per_s")
    assert list(tmp_path.iterdir()) == [], "the temp folders are removed"


def test_report_benchmark_builds_reuses_and_agrees_with_hledger(tmp_path: Path) -> None:
    db = tmp_path / "report.db"
    tiny = ["--claims", "2000", "--small-claims", "400", "--members", "40", "--activities", "6",
            "--repeat", "1", "--db", str(db)]  # fmt: skip
    first = _run("report.py", *tiny)
    _positive(
        first,
        "report_s",
        "hledger_s",
        "ratio",
        "ratio_small",
        "report_tracemalloc_peak_mb",
        "report_peak_rss_mb",
        "hledger_maxrss_mb",
        "build_s",
        "build_claims_per_s",
        "verify_s",
        "cells_compared",
    )
    _described(first)
    assert first["benchmark"] == "report" and first["claims"] == 2000
    assert first["entries"] == 2000 + first["reversals"] and first["small_claims"] == 400
    assert first["hledger_transactions"] == first["entries"] and not first["ratio_is_scaled"]
    assert first["target_ratio"] == 30 and first["target_s"] == 2.0
    assert isinstance(first["meets_target"], bool)
    assert db.exists() and (tmp_path / "report.small.db").exists()
    assert (tmp_path / "report.db.params.json").exists()
    again = _run("report.py", *tiny, "--hledger-claims", "1000")  # reused; hledger on a part
    assert again["build_s"] is None and again["entries"] == first["entries"]
    assert again["ratio_is_scaled"] and again["hledger_transactions"] < again["entries"]
    assert again["hledger_months_to"] < "2025-12" and again["cells_compared"] > 0
    _positive(again, "report_s", "hledger_s", "ratio")
    other = subprocess.run(
        [sys.executable, str(BENCH / "report.py"), *tiny[:-2], "--claims", "1000", "--db",
         str(db)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert other.returncode == 2 and "name another --db" in other.stderr, other.stderr


def test_health_wait_benchmark_reports_each_hostile_upload() -> None:
    result = _run("health_wait.py", "--rounds", "1", "--lines", "500")
    _described(result)
    assert result["benchmark"] == "health_wait"
    kinds = {"many_lines", "huge_fields", "many_columns", "deep_json", "page_many_lines",
             "commit_many_lines", "commit_written_hours", "commit_written_members",
             "commit_timeoverflow_members", "commit_timeoverflow_transfers"}  # fmt: skip
    assert set(result["kinds"]) == kinds
    for figures in result["kinds"].values():
        _positive(figures, "upload_bytes", "health_alone_ms")
        assert figures["health_answers_during_upload"] >= 0
