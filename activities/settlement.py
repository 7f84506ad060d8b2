"""Settlement activity: read receipts with starknet-py, primary RPC then fallbacks."""

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import aiohttp
from starknet_py.net.client_errors import ClientError
from starknet_py.net.full_node_client import FullNodeClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.receipts import interpret_receipt
from protocol.models import ReasonCode
from protocol.tokens import token_address
from workflows.models import ReceiptCheck, ReceiptCheckInput, ReceiptOutcome

# Starknet JSON-RPC error TXN_HASH_NOT_FOUND: the node has not seen it (yet).
TXN_HASH_NOT_FOUND = 29


class SettlementActivities:
    """Receipt checks against the configured Starknet JSON-RPC endpoints."""

    def __init__(
        self, rpc_urls: Sequence[str], token_overrides: Mapping[str, str] | None = None
    ) -> None:
        if not rpc_urls:
            raise ValueError("at least one Starknet RPC URL is needed")
        self._clients = [FullNodeClient(node_url=url) for url in rpc_urls]
        self._token_overrides = dict(token_overrides or {})

    @activity.defn(name="check_receipt")
    async def check_receipt(self, check: ReceiptCheckInput) -> ReceiptCheck:
        """Settled, pending or failed for one settlement transaction.

        Read-only, so any retry is safe. Raises a retryable RPC_FAILURE only when
        every endpoint failed; "not found yet" is an answer (pending), not a fault.
        """
        failures: list[str] = []
        for client in self._clients:
            try:
                result = await self._check_with(client, check)
            except (ClientError, aiohttp.ClientError, TimeoutError) as error:
                activity.logger.warning(
                    "rpc endpoint failed payment_ref=%s url=%s error=%s",
                    check.payment_ref,
                    _redact(client.url),
                    _short(error),
                )
                failures.append(f"{_redact(client.url)}: {_short(error)}")
                continue

            activity.logger.info(
                "receipt checked payment_ref=%s outcome=%s finality=%s",
                check.payment_ref,
                result.outcome,
                result.finality,
            )
            return result
        raise ApplicationError(
            "every Starknet RPC endpoint failed: " + "; ".join(failures),
            type=ReasonCode.RPC_FAILURE.value,
        )

    async def _check_with(
        self, client: FullNodeClient, check: ReceiptCheckInput
    ) -> ReceiptCheck:
        try:
            receipt = await client.get_transaction_receipt(check.settlement_tx_hash)
        except ClientError as error:
            if _is_not_found(error):
                return ReceiptCheck(
                    outcome=ReceiptOutcome.PENDING,
                    detail="transaction not found yet",
                    rpc_url=_redact(client.url),
                )
            raise

        address = token_address(check.network, check.token, self._token_overrides)
        result = interpret_receipt(receipt, check, address)
        return result.model_copy(
            update={
                "rpc_url": _redact(client.url),
                "block_number": getattr(receipt, "block_number", None),
            }
        )


def _is_not_found(error: ClientError) -> bool:
    # JSON-RPC errors carry an int code; HTTP failures a string such as "500".
    return error.code == TXN_HASH_NOT_FOUND


def _short(error: BaseException) -> str:
    return (str(error) or type(error).__name__)[:200]


def _redact(url: str) -> str:
    # Providers put API keys in the path or query: only the host is safe to show.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
