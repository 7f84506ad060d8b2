"""Run the local chain simulator on its own: ``python -m devchain --port 5050``."""

import argparse
import asyncio
import logging
import signal

from devchain.server import CHAIN_IDS, DevChain

BANNER = "LOCAL SIMULATOR — not a real Starknet chain"


def main(argv: list[str] | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM."""
    args = _parse(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(_serve(args))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devchain", description=f"{BANNER}: Starknet JSON-RPC for dev."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5050, help="0 picks a free port")
    parser.add_argument("--network", choices=sorted(CHAIN_IDS), default="sepolia")
    parser.add_argument("--finality-seconds", type=float, default=3.0)
    parser.add_argument("--pre-confirm-seconds", type=float, default=1.0)
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    chain = DevChain(
        network=args.network,
        finality_seconds=args.finality_seconds,
        pre_confirm_seconds=args.pre_confirm_seconds,
    )
    url = await chain.start(args.host, args.port)
    _print_banner(chain, url)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        await chain.stop()


def _print_banner(chain: DevChain, url: str) -> None:
    rule = "=" * len(BANNER)
    lines = [
        rule,
        BANNER,
        rule,
        f"url:      {url}",
        f"network:  {chain.network} (chain id {chain.chain_id})",
        f"STRK:     {chain.strk_address}",
        f"ETH:      {chain.eth_address}",
        f"timeline: PRE_CONFIRMED after {chain.timeline.pre_confirm_seconds}s, "
        f"ACCEPTED_ON_L2 after {chain.timeline.finality_seconds}s",
        "Every transaction, block and fee here is made up; no funds move.",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
