"""Payment receipts are signed over every field and checked offline."""

from protocol.receipt import PaymentReceipt, has_valid_receipt_signature, sign_receipt
from tests.factories import RECIPIENT, SECRET, TX_HASH


def _receipt(**overrides: str) -> PaymentReceipt:
    fields = {
        "payment_ref": "pay_rk_1",
        "replay_key": "rk_1",
        "challenge_id": "c-1",
        "settlement_tx_hash": TX_HASH,
        "amount": "100",
        "token": "STRK",
        "recipient": RECIPIENT,
        "network": "sepolia",
        "finality": "ACCEPTED_ON_L2",
        "settled_at": "2026-12-03T12:00:00.000Z",
    }
    return PaymentReceipt(**(fields | overrides))


def test_signed_receipt_verifies_with_the_secret() -> None:
    receipt = sign_receipt(_receipt(), SECRET)

    assert len(receipt.signature) == 64
    assert has_valid_receipt_signature(receipt, ("other-secret-value", SECRET))


def test_changing_any_field_breaks_the_receipt_signature() -> None:
    receipt = sign_receipt(_receipt(), SECRET)

    forged = receipt.model_copy(update={"amount": "1000"})

    assert not has_valid_receipt_signature(forged, (SECRET,))


def test_receipt_travels_with_camel_case_fields() -> None:
    wire = sign_receipt(_receipt(), SECRET).model_dump()

    assert wire["paymentRef"] == "pay_rk_1"
    assert wire["settlementTxHash"] == TX_HASH
    assert PaymentReceipt.model_validate(wire).signature == wire["signature"]
