"""``x402-rails conformance`` passes the shared vectors and flags a wrong one."""

import re
import subprocess
import sys
from pathlib import Path

from tests.paths import VECTORS_PATH, require

CLI = [sys.executable, "-m", "cli"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_shared_vectors_all_pass_with_exit_status_zero() -> None:
    result = run_cli("conformance", str(require(VECTORS_PATH)))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "56 passed, 0 failed"


def test_wrong_expected_value_fails_and_names_the_case(tmp_path: Path) -> None:
    text = require(VECTORS_PATH).read_text(encoding="utf-8")
    tampered, right = _replace_after(
        text, '"ctx_empty_object"', r'"expected_context_hash":\s*"([0-9a-f]{64})"'
    )
    path = tmp_path / "tampered.json"
    path.write_text(tampered, encoding="utf-8")

    result = run_cli("conformance", str(path))

    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "55 passed, 1 failed"
    assert [line for line in lines if line.startswith("FAIL")] == [
        f"FAIL  context_hash/ctx_empty_object: expected '{'0' * 64}', got '{right}'"
    ]


def test_wrong_verify_outcome_is_reported(tmp_path: Path) -> None:
    text = require(VECTORS_PATH).read_text(encoding="utf-8")
    tampered, _ = _replace_after(
        text, '"verify_accepted_basic"', r'"status":\s*"(accepted)"', "rejected"
    )
    path = tmp_path / "tampered.json"
    path.write_text(tampered, encoding="utf-8")

    result = run_cli("conformance", str(path))

    assert result.returncode == 1
    assert "FAIL  verify/verify_accepted_basic" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "55 passed, 1 failed"


def test_unreadable_file_exits_two_with_a_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"cases": {"mystery": []}}', encoding="utf-8")

    result = run_cli("conformance", str(broken))

    assert result.returncode == 2
    assert "unknown case groups ['mystery']" in result.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "x402-rails"

    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0
    assert "conformance" in result.stdout


def _replace_after(
    text: str, anchor: str, pattern: str, new: str = "0" * 64
) -> tuple[str, str]:
    # Edit the raw text: re-encoding would rewrite literals such as 1e400 that
    # the vectors keep on purpose.
    found = re.compile(pattern).search(text, text.index(anchor))
    assert found is not None
    start, end = found.span(1)
    return text[:start] + new + text[end:], found.group(1)
