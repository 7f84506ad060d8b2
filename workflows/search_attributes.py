"""Search attributes that make a payment findable in the Temporal UI."""

from temporalio.common import SearchAttributeKey

# Must match: the attributes the dev command and docker-compose register.
X402_STATE = SearchAttributeKey.for_keyword("X402State")
X402_PAYMENT_REF = SearchAttributeKey.for_keyword("X402PaymentRef")
X402_RUN_ID = SearchAttributeKey.for_keyword("X402RunId")
X402_SETTLEMENT_TX_HASH = SearchAttributeKey.for_keyword("X402SettlementTxHash")
X402_AGENT_ID = SearchAttributeKey.for_keyword("X402AgentId")

ALL = (
    X402_STATE,
    X402_PAYMENT_REF,
    X402_RUN_ID,
    X402_SETTLEMENT_TX_HASH,
    X402_AGENT_ID,
)
