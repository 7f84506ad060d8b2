"""Property tests: the Python port agrees with a real ECMAScript engine (Node.js)."""

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import jsjson
from protocol.amounts import AmountSyntaxError, parse_amount
from protocol.hashing import fnv_digest
from protocol.timestamps import parse_timestamp_ms

ORACLE = Path(__file__).with_name("node_oracle.js")

# Node ships with the build machines; without it these properties cannot run,
# and the skip says so instead of passing silently.
pytestmark = pytest.mark.skipif(
    shutil.which("node") is None, reason="Node.js is not installed: no JS oracle"
)

_lone_surrogates = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
strings = st.lists(st.one_of(st.text(max_size=8), _lone_surrogates), max_size=4).map(
    "".join
)
keys = st.one_of(strings, st.integers(0, 2**32).map(str), st.sampled_from(["01", "-0"]))
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**70), 2**70),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, strings),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=12,
)


class NodeOracle:
    """One long-lived ``node`` process answering a JSON request per line."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            ["node", str(ORACLE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env={"TZ": "UTC", "PATH": "/usr/bin:/bin:/usr/local/bin"},
        )

    def ask(self, op: str, value: Any) -> Any:
        # ensure_ascii escapes lone surrogates, so JS reads the very same string.
        request = json.dumps({"op": op, "value": value}, ensure_ascii=True)
        assert self._process.stdin and self._process.stdout
        self._process.stdin.write(request + "\n")
        self._process.stdin.flush()
        return json.loads(self._process.stdout.readline())["result"]

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=5)


@pytest.fixture(scope="module")
def node() -> Iterator[NodeOracle]:
    oracle = NodeOracle()
    yield oracle
    oracle.close()


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_stringify_matches_json_stringify(node: NodeOracle, value: Any) -> None:
    assert jsjson.stringify(value) == node.ask("stringify", value)


@settings(max_examples=200, deadline=None)
@given(text=strings)
def test_fnv_digest_matches_the_reference_algorithm(
    node: NodeOracle, text: str
) -> None:
    assert fnv_digest(text) == node.ask("fnv", text)


amount_texts = st.text(
    alphabet=st.sampled_from(list("0123456789abcdefxobXOB+-_. \t\n\u00a0\ufeff٣e")),
    max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(text=amount_texts)
def test_amount_parsing_matches_bigint(node: NodeOracle, text: str) -> None:
    expected = node.ask("bigint", text)

    try:
        actual: str | None = str(parse_amount(text))
    except AmountSyntaxError:
        actual = None

    assert actual == expected


iso_texts = st.builds(
    lambda y, mo, d, h, mi, s, frac, off: f"{y}-{mo}-{d}T{h}:{mi}:{s}{frac}{off}",
    st.sampled_from(["2025", "1969", "0000", "+275760", "-000001", "9999"]),
    st.sampled_from(["01", "02", "12", "13", "00"]),
    st.sampled_from(["01", "28", "29", "30", "31", "32"]),
    st.sampled_from(["00", "23", "24", "25"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["", ".5", ".535", ".5359", ".123456789"]),
    st.sampled_from(["Z", "", "+01:00", "-05:30", "+23:59", "+24:00"]),
)


@settings(max_examples=300, deadline=None)
@given(text=iso_texts)
def test_timestamp_parsing_matches_date_parse(node: NodeOracle, text: str) -> None:
    assert parse_timestamp_ms(text) == node.ask("date", text)


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_parse_then_stringify_round_trips_like_node(
    node: NodeOracle, value: Any
) -> None:
    text = json.dumps(value, ensure_ascii=False)

    assert jsjson.stringify(jsjson.parse(text)) == node.ask("parse", text)
