"""Local Starknet JSON-RPC chain simulator for running paid runs on one machine."""

from devchain.client import DevChainError, submit_transfer
from devchain.server import DevChain

__all__ = ["DevChain", "DevChainError", "submit_transfer"]
