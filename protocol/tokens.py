"""Token symbols and their ERC-20 contract addresses on each Starknet network."""

from collections.abc import Mapping

# STRK and ETH have the same address on mainnet and Sepolia. Native USDC is
# Circle's mainnet contract; on Sepolia it has no default and stays "unchecked"
# unless X402_TOKEN_ADDRESSES names one.
DEFAULT_TOKEN_ADDRESSES: dict[str, dict[str, str]] = {
    "mainnet": {
        "STRK": "0x4718f5a0fc34cc1af16a1cdee98ffb20c31f5cd61d6ab07201858f4287c938d",
        "ETH": "0x49d36570d4e46f48e99674bd3fcc84644ddd6b96f7c741b1562b82f9e004dc7",
        "USDC": "0x33068f6539f8e6e6b131e6b2b814e6c34a5224bc66947c47dab9dfee93b35fb",
    },
    "sepolia": {
        "STRK": "0x4718f5a0fc34cc1af16a1cdee98ffb20c31f5cd61d6ab07201858f4287c938d",
        "ETH": "0x49d36570d4e46f48e99674bd3fcc84644ddd6b96f7c741b1562b82f9e004dc7",
    },
}


def token_address(
    network: str, symbol: str, overrides: Mapping[str, str] | None = None
) -> str | None:
    """The contract of ``symbol`` on ``network``, or None when it is not known."""
    if overrides and symbol in overrides:
        return overrides[symbol]
    return DEFAULT_TOKEN_ADDRESSES.get(network, {}).get(symbol)
