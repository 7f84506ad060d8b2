"""The ``conformance`` command: one line per failing vector, then a closing count."""

from pathlib import Path

import typer

from protocol.conformance import CaseResult, run_vectors

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2


def run_conformance(path: Path, *, verbose: bool = False) -> int:
    """Run every case in ``path``; the exit status is 0 only when none failed."""
    try:
        results = list(run_vectors(path))
    except (OSError, ValueError, KeyError, TypeError) as error:
        typer.echo(f"error: cannot run {path}: {_explain(error)}", err=True)
        return EXIT_UNUSABLE

    passed = failed = 0
    for result in results:
        if result.passed:
            passed += 1
            if verbose:
                typer.echo(f"ok    {result.group}/{result.name}")
            continue
        failed += 1
        typer.echo(_describe_failure(result))

    typer.echo(f"{passed} passed, {failed} failed")
    if not results:
        typer.echo(f"error: {path} holds no cases", err=True)
        return EXIT_UNUSABLE
    return EXIT_OK if failed == 0 else EXIT_FAILED


def _describe_failure(result: CaseResult) -> str:
    return (
        f"FAIL  {result.group}/{result.name}: "
        f"expected {result.expected!r}, got {result.actual!r}"
    )


def _explain(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"a case lacks the field {error}"
    return str(error)
