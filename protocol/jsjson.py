"""JSON text exactly as ECMAScript writes and reads it, so signatures match.

The Cloak x402 reference computes every signed or hashed message with
``JSON.stringify`` and reads proofs with ``JSON.parse``. Python's ``json`` module
differs in number formatting, escaping, key order and accepted constants; this
module closes those gaps. Numbers are IEEE doubles, as in ECMAScript.
"""

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Must match: ECMAScript array-index property keys ("0" .. "4294967294", no
# leading zeros), which every ECMAScript object lists first, in numeric order.
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")
_MAX_ARRAY_INDEX = 2**32 - 2

_SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
_SHORT_ESCAPES |= {0x22: '\\"', 0x5C: "\\\\"}


class JSONSyntaxError(ValueError):
    """The text is not strict JSON (what ``JSON.parse`` would throw on)."""


def is_array_index(key: str) -> bool:
    """Whether ECMAScript treats this property key as an array index."""
    return bool(_ARRAY_INDEX.fullmatch(key)) and int(key) <= _MAX_ARRAY_INDEX


def js_key_order(keys: Iterable[str]) -> list[str]:
    """Order keys the way an ECMAScript object enumerates them."""
    keys = list(keys)
    indices = sorted((k for k in keys if is_array_index(k)), key=int)
    return indices + [k for k in keys if not is_array_index(k)]


def utf16_units(text: str) -> list[int]:
    """The UTF-16 code units of a string, lone surrogates kept as they are."""
    data = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]


def utf16_length(text: str) -> int:
    """String length as ECMAScript counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf16_sort_key(text: str) -> bytes:
    """Sort key that orders strings by UTF-16 code units, as ``Array.sort`` does."""
    return text.encode("utf-16-be", "surrogatepass")


def to_utf8(text: str) -> bytes:
    """UTF-8 bytes as Node encodes a string: lone surrogates become U+FFFD."""
    units = text.encode("utf-16-le", "surrogatepass")
    return units.decode("utf-16-le", "replace").encode("utf-8")


def format_number(value: float | int) -> str:
    """Number::toString of ECMAScript for a double; non-finite numbers give null."""
    try:
        number = float(value)
    except OverflowError:
        return "null"
    if not math.isfinite(number):
        return "null"
    if number == 0:
        return "0"

    sign = "-" if number < 0 else ""
    digits, point = _shortest_digits(abs(number))
    count = len(digits)

    if count <= point <= 21:
        return sign + digits + "0" * (point - count)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits

    exponent = point - 1
    exponent_text = ("+" if exponent >= 0 else "-") + str(abs(exponent))
    mantissa = digits if count == 1 else digits[0] + "." + digits[1:]
    return sign + mantissa + "e" + exponent_text


def _shortest_digits(number: float) -> tuple[str, int]:
    """Shortest round-trip digits d and exponent n with number = 0.d * 10**n."""
    mantissa, _, exponent = repr(number).partition("e")
    whole, _, fraction = mantissa.partition(".")
    every = whole + fraction
    stripped = every.lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(every) - len(stripped))
    return stripped.rstrip("0"), point


def quote_string(text: str) -> str:
    """QuoteJSONString: non-ASCII kept, controls and lone surrogates escaped."""
    units = utf16_units(text)
    out: list[str] = ['"']
    i = 0
    while i < len(units):
        unit = units[i]
        is_high = 0xD800 <= unit <= 0xDBFF
        if is_high and i + 1 < len(units) and 0xDC00 <= units[i + 1] <= 0xDFFF:
            pair = 0x10000 + ((unit - 0xD800) << 10) + (units[i + 1] - 0xDC00)
            out.append(chr(pair))
            i += 2
            continue
        if unit in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[unit])
        elif unit < 0x20 or 0xD800 <= unit <= 0xDFFF:
            out.append(f"\\u{unit:04x}")
        else:
            out.append(chr(unit))
        i += 1
    out.append('"')
    return "".join(out)


def stringify(value: Any) -> str:
    """``JSON.stringify(value)`` with no indentation."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, Mapping):
        members = (
            f"{quote_string(k)}:{stringify(value[k])}" for k in js_key_order(value)
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(stringify(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def parse(text: str) -> Any:
    """``JSON.parse(text)``: strict JSON, numbers as doubles, keys in JS order."""
    try:
        return json.loads(
            text,
            parse_int=_parse_double,
            parse_float=_parse_double,
            parse_constant=_refuse_constant,
            object_pairs_hook=_build_object,
        )
    except (json.JSONDecodeError, RecursionError) as error:
        raise JSONSyntaxError(str(error)) from error


def _parse_double(literal: str) -> float:
    return float(literal)


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def _build_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key keeps its first position and its last value, as in JS.
    merged: dict[str, Any] = {}
    for key, value in pairs:
        merged[key] = value
    return {key: merged[key] for key in js_key_order(merged)}
