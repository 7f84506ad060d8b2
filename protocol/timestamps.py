"""Challenge timestamps: ECMAScript date-time strings at millisecond precision."""

import re
from datetime import UTC, datetime

_DATE_TIME = re.compile(
    r"(?P<year>[+-]\d{6}|\d{4})"
    r"(?:-(?P<month>\d{2})(?:-(?P<day>\d{2}))?)?"
    r"(?:[Tt](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})?)?",
    re.ASCII,
)
# ECMAScript time values stop 100,000,000 days either side of the epoch.
_MAX_TIME_MS = 8_640_000_000_000_000
_MS_PER_DAY = 86_400_000


def parse_timestamp_ms(text: str) -> int | None:
    """Milliseconds since the epoch for an ISO date-time string, or None if invalid.

    Follows the ECMAScript Date Time String Format: offsets are honoured, digits
    past milliseconds are dropped, and a date-time without an offset is read as
    UTC (the reference runs its facilitator in UTC).

    Known limitation: V8 also parses many non-ISO strings ("Mar 14 2025") through
    its legacy parser; those give None here, so such a challenge counts as
    expired. Challenges this service signs always use the ISO form.
    """
    match = _DATE_TIME.fullmatch(text)
    if not match or match["year"] == "-000000":
        return None
    parts = match.groupdict()

    year = int(parts["year"])
    month = int(parts["month"] or 1)
    day = int(parts["day"] or 1)
    hour, minute = int(parts["hour"] or 0), int(parts["minute"] or 0)
    second = int(parts["second"] or 0)
    millisecond = int((parts["fraction"] or "0")[:3].ljust(3, "0"))
    if not _fields_in_range(month, day, hour, minute, second, millisecond):
        return None

    offset_minutes = _offset_minutes(parts["offset"])
    if offset_minutes is None:
        return None
    clock = ((hour * 60 + minute - offset_minutes) * 60 + second) * 1000
    moment = _days_from_civil(year, month, day) * _MS_PER_DAY + clock + millisecond
    return moment if abs(moment) <= _MAX_TIME_MS else None


def format_timestamp(moment: datetime) -> str:
    """``Date.prototype.toISOString`` form: UTC, milliseconds, trailing Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime, truncated like JS."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _fields_in_range(*fields: int) -> bool:
    month, day, hour, minute, second, millisecond = fields
    # V8 accepts any day up to 31 and rolls it over (2025-02-30 is March 2nd).
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return False
    if hour == 24:
        return minute == second == millisecond == 0
    return hour < 24 and minute < 60 and second < 60


def _offset_minutes(offset: str | None) -> int | None:
    if offset is None or offset in "Zz":
        return 0
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    if hours > 23 or minutes > 59:
        return None
    sign = -1 if offset[0] == "-" else 1
    return sign * (hours * 60 + minutes)


def _days_from_civil(year: int, month: int, day: int) -> int:
    # Days since 1970-01-01 in the proleptic Gregorian calendar, for any year.
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468
