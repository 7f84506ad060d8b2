"""JSON text is written and read exactly as ECMAScript does."""

import pytest

from protocol import jsjson


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (1e-7, "1e-7"),
        (0.00001, "0.00001"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (12345678901234567891, "12345678901234567000"),
        (float("inf"), "null"),
        (float("nan"), "null"),
        (10**400, "null"),
        (-1.5e-10, "-1.5e-10"),
        (123.456, "123.456"),
    ],
)
def test_numbers_are_written_in_ecmascript_form(number: float, text: str) -> None:
    assert jsjson.stringify(number) == text


def test_array_index_keys_come_first_in_numeric_order() -> None:
    value = {"b": 1, "10": 2, "a": 3, "2": 4, "01": 5, "4294967295": 6}

    text = jsjson.stringify(value)

    assert text == '{"2":4,"10":2,"b":1,"a":3,"01":5,"4294967295":6}'


def test_strings_escape_controls_and_lone_surrogates_only() -> None:
    text = jsjson.stringify('é"\\\n\x01\ud800😀')

    assert text == '"é\\"\\\\\\n\\u0001\\ud800😀"'


def test_parse_rejects_nan_and_infinity() -> None:
    for literal in ("NaN", '{"a":Infinity}', "-Infinity"):
        with pytest.raises(jsjson.JSONSyntaxError):
            jsjson.parse(literal)


def test_parse_keeps_first_position_and_last_value_of_repeated_keys() -> None:
    parsed = jsjson.parse('{"a":1,"b":2,"a":3}')

    assert list(parsed.items()) == [("a", 3.0), ("b", 2.0)]


def test_utf16_helpers_count_code_units() -> None:
    assert jsjson.utf16_length("😀😀") == 4
    assert sorted(["\uffff", "😀"], key=jsjson.utf16_sort_key) == ["😀", "\uffff"]
    assert jsjson.to_utf8("a\ud800") == "a\ufffd".encode()
