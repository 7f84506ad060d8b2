"""Where the shared protocol vectors and Starknet fixtures live beside the repo."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# CI lays shared/ beside the clone; X402_SHARED_DIR points elsewhere if needed.
SHARED_DIR = Path(os.environ.get("X402_SHARED_DIR", REPO_ROOT.parent / "shared"))
VECTORS_PATH = SHARED_DIR / "conformance" / "cloak-x402-v1-vectors.json"
STARKNET_FIXTURES = SHARED_DIR / "fixtures" / "starknet"


def require(path: Path) -> Path:
    """The path, or a failure that says where shared/ was expected."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: put shared/ beside the repo or set X402_SHARED_DIR"
        )
    return path
