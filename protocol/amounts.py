"""Token amounts read the way ECMAScript ``BigInt(string)`` reads them."""

import re

# StrWhiteSpaceChar of ECMAScript: WhiteSpace (including every Zs character and
# the BOM) and LineTerminator. Python's str.strip() strips a different set.
_JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DECIMAL = re.compile(r"[+-]?[0-9]+")
_PREFIXED = re.compile(r"0([xXoObB])([0-9a-fA-F]+)")
_BASES = {"x": 16, "o": 8, "b": 2}


class AmountSyntaxError(ValueError):
    """The text is not an integer that ``BigInt`` would accept."""


def parse_amount(text: str) -> int:
    """Parse an integer amount; raises AmountSyntaxError where BigInt would throw."""
    trimmed = text.strip(_JS_WHITESPACE)
    if trimmed == "":
        return 0
    if _DECIMAL.fullmatch(trimmed):
        return int(trimmed, 10)

    prefixed = _PREFIXED.fullmatch(trimmed)
    if prefixed:
        base = _BASES[prefixed.group(1).lower()]
        try:
            return int(prefixed.group(2), base)
        except ValueError as error:
            raise AmountSyntaxError(f"not a base-{base} integer: {text!r}") from error
    raise AmountSyntaxError(f"not an integer amount: {text!r}")
