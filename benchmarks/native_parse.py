"""The raw-event validation of docs/contracts.md as native Spark SQL expressions, for measurement only.

:func:`validate_lines_native` takes and yields what ``spark_jobs.parse_logs.validate_lines`` does, with
``from_json``, regexes, ``make_date`` and ``when`` chains instead of Python; the contract's checks in
its order, constants from :mod:`spark_jobs.common.events`. What it cannot express (so the product keeps
the Python validator), and why it needs :data:`REQUIRED_CONF` and :data:`JIT_JAVA_OPTION`: see
benchmarks/README.md.
"""

from __future__ import annotations

import sys
from functools import reduce
from typing import Dict, List, Sequence, Tuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.common import events as E

# JSON partial results off (a bad \u escape must fail the record), ANSI off (make_date and casts give null).
REQUIRED_CONF: Dict[str, str] = {
    "spark.sql.json.enablePartialResults": "false",
    "spark.sql.ansi.enabled": "false",
}
JIT_JAVA_OPTION = "-XX:-DontCompileHugeMethods"  # the fused projection is ~17 KB of bytecode, over 8,000
FIELDS = ("event_id", "user_id", "item_id", "event_type", "ts", "session_id", "value")
# Every field as text (a wrong type must be an invalid_type reject, not a parse error); the array catches
# text after the object.
_SCHEMA = "array<struct<" + ",".join(f"`{name}`:string" for name in FIELDS) + ">>"
# Spark's JSON reader is lenient by default; these switch off what Python's json.loads rejects.
_JSON_OPTIONS = {
    f"allow{x}": "false"
    for x in ("NonNumericNumbers", "SingleQuotes", "UnquotedFieldNames", "Comments", "NumericLeadingZeros",
              "BackslashEscapingAnyCharacter", "UnquotedControlChars")
}  # fmt: skip
_JSON_WS_CHARS = (" ", "\t", "\r", "\n")
_JSON_WS = r"[ \t\r\n]"
# Exactly what Python's str.strip removes (str.isspace), taken from Python itself; all in the BMP.
_PY_SPACE_CHARS = tuple(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
_PY_SPACE = "[" + "".join(f"\\u{ord(c):04x}" for c in _PY_SPACE_CHARS) + "]"
_BLANK_START = (" ", "\t", "\r", "\n", "\x0b", "\x0c", "\ufeff")
_BLANK_LINE = r"^(?:\uFEFF)?[ \t\r\n\x0B\f]*$"  # events.is_blank_bytes: ASCII whitespace after a BOM
_JSON_STRING = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'  # unrolled, possessive: no backtracking
_MANY_OPENERS = r"^(?:[^\[{]*+[\[{]){" + str(E.MAX_NESTING + 1) + "}"  # Python's cheap test before depth
_NUMBER = r"^-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?$"  # Jackson's text of a number
_DIGITS = r"^-?[0-9]++$"


def _first(text: Column) -> Column:
    return F.substring(text, 1, 1)


def _any(test, chars: Sequence[str]) -> Column:
    """``test(c1) | test(c2) | ...`` (byte comparisons: no character count of the line first)."""
    return reduce(Column.__or__, map(test, chars))


def _is_blank(text: Column) -> Column:
    """``not text.strip()`` for a non-null text (the regex only runs when the first character is space)."""
    return (text == "") | (_first(text).isin(*_PY_SPACE_CHARS) & text.rlike(f"^{_PY_SPACE}*+$"))


def _strip(text: Column) -> Column:
    """``text.strip()`` (the regex only runs when the text starts or ends with space)."""
    spaced = _first(text).isin(*_PY_SPACE_CHARS) | F.substring(text, -1, 1).isin(*_PY_SPACE_CHARS)
    return F.when(spaced, F.regexp_replace(text, f"^{_PY_SPACE}++|{_PY_SPACE}++$", "")).otherwise(text)


def _maybe_not_string(text: Column) -> Column:
    """Whether a field's text could be that of a number, boolean, array or object rather than a string:
    only then is the line searched for the value's JSON type."""
    first = _first(text)
    return (
        F.when(first.isin("[", "{", '"'), True)
        .when(first.isin(*"-0123456789"), text.rlike(_NUMBER))
        .otherwise(text.isin("true", "false"))
    )


def _token(line: Column, name: str) -> Column:
    """The start of field ``name``'s value on the line, at its first ``"name":`` (``"`` for a string, a
    number's digits ending in ``.``/``e``/``E`` for a float, ``t``/``f``, ``n``, ``[``/``{``; ``""``)."""
    return F.regexp_extract(line, f'"{name}"{_JSON_WS}*+:{_JSON_WS}*+(-?[0-9]++[.eE]?|.)', 1)


def _nesting_depth(text: Column) -> Column:
    """Deepest level of ``[``/``{`` outside JSON strings (events.nesting_depth for valid JSON)."""
    brackets = F.regexp_replace(F.regexp_replace(text, _JSON_STRING, ""), r"[^\[\]{}]", "")

    def step(acc: Column, char: Column) -> Column:
        depth = acc["d"] + F.when(char.isin("[", "{"), 1).otherwise(-1)
        return F.struct(depth.alias("d"), F.greatest(acc["m"], depth).alias("m"))

    start = F.struct(F.lit(0).alias("d"), F.lit(0).alias("m"))
    return F.aggregate(F.split(brackets, ""), start, step, lambda acc: acc["m"])


def _timestamp_us(ms: Column, groups: Sequence[Column]) -> Column:
    """events.parse_timestamp_us from epoch milliseconds ``ms`` or the 8 groups of ``_ISO_RE`` on the
    stripped text, computed from the fields (Java zone offsets stop at ±18:00, Python's at ±23:59)."""
    year, month, day, hour, minute, second = (g.cast("int") for g in groups[:6])
    fraction, offset = groups[6], groups[7]
    date = F.make_date(year, month, day)  # null for an impossible date (non-ANSI)
    micros = F.rpad(F.substring(fraction, 1, 6), 6, "0").cast("long")  # truncated, as Python does
    off_hours = F.substring(offset, 2, 2).cast("int")
    off_minutes = F.coalesce(F.regexp_replace(F.substring(offset, 4, 3), ":", "").cast("int"), F.lit(0))
    utc = offset.isin("Z", "z")
    sign = F.when(F.substring(offset, 1, 1) == "-", -1).otherwise(1)
    offset_s = F.when(utc, 0).otherwise(sign * (off_hours * 3600 + off_minutes * 60))
    seconds = F.unix_date(date).cast("long") * 86400 + hour * 3600 + minute * 60 + second - offset_s
    valid = (groups[0] != "") & date.isNotNull() & (hour <= 23) & (minute <= 59) & (second <= 59)
    valid = valid & (utc | ((off_hours <= 23) & (off_minutes <= 59)))  # groups[0] is "" when no match
    us = seconds * 1_000_000 + micros
    return F.coalesce(F.when((ms >= 0) & (ms <= E._MAX_EPOCH_MS), ms * 1000), F.when(valid & (us >= 0), us))


def validate_lines_native(lines: DataFrame) -> DataFrame:
    """Raw lines (column ``value``) -> one row per non-blank line with parse_logs' ``_PARSED_LINE``
    columns (``value`` as text, timestamps in UTC microseconds).

    Built in projections so that every regex and the JSON parse run at most once per line (Spark does
    not inline a projection's expensive result into several uses), with cheap character tests in front
    of the regexes. Raises ValueError if the session does not have :data:`REQUIRED_CONF`.
    """
    conf = lines.sparkSession.conf
    wrong = {k: conf.get(k) for k, v in REQUIRED_CONF.items() if conf.get(k).lower() != v}
    if wrong:
        raise ValueError(f"validate_lines_native needs {REQUIRED_CONF}; the session has {wrong}")
    value = F.col("value")
    blank = (value == "") | (_any(value.startswith, _BLANK_START) & value.rlike(_BLANK_LINE))
    lines = lines.where(~blank).select(
        value.alias("_value"),
        (F.encode(value, "UTF-8") == value.cast("binary")).alias("_utf8"),  # Java's decoder: bad -> U+FFFD
        (F.octet_length(value) <= E.MAX_LINE_BYTES).alias("_short"),
        F.when(value.startswith("\ufeff"), F.expr("substr(value, 2)")).otherwise(value).alias("_text"),
    )
    # The JSON parse, and what Jackson does not check: nesting depth, text after the object.
    text, kept = F.col("_text"), ("_value", "_utf8", "_short")
    parse = F.col("_utf8") & F.col("_short")  # Python stops at these two: no JSON parse either
    records = F.from_json(F.concat(F.lit("["), text, F.lit("]")), _SCHEMA, _JSON_OPTIONS)
    too_deep = text.rlike(_MANY_OPENERS) & (_nesting_depth(text) > E.MAX_NESTING)
    ends_object = text.endswith("}") | (
        _any(text.endswith, _JSON_WS_CHARS) & text.rlike(r"\}" + _JSON_WS + "*+$")
    )
    bad_text = F.when(parse, too_deep | ~ends_object)
    lines = lines.select(
        *kept, "_text", F.when(parse, records).alias("_records"), bad_text.alias("_bad_text")
    )
    records = F.col("_records")
    record = records[0]
    malformed = records.isNull() | (F.size(records) != 1) | record.isNull() | F.col("_bad_text")
    lines = lines.select(*kept, "_text", malformed.alias("_malformed"), *[record[n].alias(n) for n in FIELDS])

    # JSON types: from the field's text when it proves a string, else from the line (see _token).
    field: Dict[str, Column] = {name: F.col(name) for name in FIELDS}
    maybe = {name: _maybe_not_string(field[name]) for name in FIELDS}
    maybe["user_id"] = maybe["user_id"] & ~field["user_id"].rlike(_DIGITS)  # int or string: both valid
    maybe["item_id"] = maybe["item_id"] & ~field["item_id"].rlike(_DIGITS)
    maybe["event_type"] = ~field["event_type"].isin(*E.EVENT_TYPES) & maybe["event_type"]
    tokens = [F.when(maybe[n], _token(text, n)).alias(f"_tok_{n}") for n in FIELDS]
    lines = lines.select(*kept, "_malformed", *FIELDS, *tokens)
    token: Dict[str, Column] = {name: F.col(f"_tok_{name}") for name in FIELDS}
    is_string = {n: token[n].isNull() | token[n].startswith('"') for n in FIELDS}
    is_int = {n: token[n].rlike(_DIGITS) for n in FIELDS}  # null (false) when the text proved a string
    ts_is_int = F.coalesce(is_int["ts"], F.lit(False))
    lines = lines.select(
        *kept, "_malformed", *FIELDS,
        *[is_string[n].alias(f"_ok_{n}") for n in ("event_id", "event_type", "session_id")],  # type ok
        *[(is_string[n] | is_int[n]).alias(f"_ok_{n}") for n in ("user_id", "item_id", "ts")],
        F.coalesce(_first(token["value"]).isin(*"-0123456789"), F.lit(False)).alias("_num_value"),
        F.when(ts_is_int, field["ts"].cast("long")).alias("_ts_ms"),
        F.when(~ts_is_int & is_string["ts"], _strip(field["ts"])).alias("_ts_iso"),
    )  # fmt: skip
    iso = F.col("_ts_iso")
    lines = lines.select(
        "*", *[F.regexp_extract(iso, E._ISO_RE.pattern, k).alias(f"_iso_{k}") for k in range(1, 9)]
    )
    # 1e400 reaches us as the text "Infinity" in quotes (Jackson re-serialises the double it parsed).
    number = F.when(F.col("_num_value"), F.regexp_replace(field["value"], '"', "").cast("double"))
    ts_us = _timestamp_us(F.col("_ts_ms"), [F.col(f"_iso_{k}") for k in range(1, 9)])
    types = [c for c in lines.columns if c.startswith("_ok_")]
    lines = lines.select(
        *kept, "_malformed", *FIELDS, *types, "_num_value", ts_us.alias("_ts_us"), number.alias("_number")
    )

    number, event_type, ts_us = F.col("_number"), field["event_type"], F.col("_ts_us")
    has_value, has_session = field["value"].isNotNull(), field["session_id"].isNotNull()
    checks: List[Tuple[Column, str, Column]] = [
        (~F.col("_utf8"), E.INVALID_UTF8, F.lit("not UTF-8")),
        (~F.col("_short"), E.LINE_TOO_LONG, F.concat(F.octet_length("_value"), F.lit(" bytes"))),
        (F.col("_malformed"), E.MALFORMED_JSON, F.lit("not one JSON object, or nested too deep")),
        *[(field[n].isNull() | _is_blank(field[n]), E.MISSING_FIELD, F.lit(n)) for n in E.REQUIRED_FIELDS],
        *[(~F.col(f"_ok_{n}"), E.INVALID_TYPE, F.lit(n)) for n in FIELDS[:5]],
        (has_session & ~F.col("_ok_session_id"), E.INVALID_TYPE, F.lit("session_id")),
        (has_value & ~F.col("_num_value"), E.INVALID_TYPE, F.lit("value")),
        (~event_type.isin(*E.EVENT_TYPES), E.UNKNOWN_EVENT_TYPE, F.substring(event_type, 1, 100)),
        ((event_type == "rating") & ~has_value, E.MISSING_FIELD, F.lit("value")),
        (ts_us.isNull(), E.INVALID_TIMESTAMP, F.substring(field["ts"], 1, 100)),
        (F.isnan(number) | (F.abs(number) == float("inf")), E.OUT_OF_RANGE_VALUE, F.lit("value not finite")),
        ((event_type == "rating") & ~number.between(E.RATING_MIN, E.RATING_MAX), E.OUT_OF_RANGE_VALUE,
         F.lit(f"rating outside [{E.RATING_MIN}, {E.RATING_MAX}]")),
        (number < 0, E.OUT_OF_RANGE_VALUE, F.lit("negative value")),
    ]  # fmt: skip
    verdict = F  # CASE WHEN c1 THEN v1 WHEN c2 THEN v2 ... END: the first reason that applies
    for condition, name, hint in checks:
        verdict = verdict.when(condition, F.struct(F.lit(name).alias("r"), hint.alias("d")))
    lines = lines.select("_value", "_utf8", *FIELDS, "_ts_us", "_number", verdict.alias("_verdict"))
    lines = lines.select("*", F.col("_verdict.r").alias("reason"), F.col("_verdict.d").alias("detail"))
    accepted, utf8, data = F.col("reason").isNull(), F.col("_utf8"), F.col("_value").cast("binary")
    kept = {n: field[n] for n in FIELDS[:4]}  # accepted lines only
    kept.update(event_ts_us=ts_us, session_id=field["session_id"], value=number.cast("string"))
    return lines.select(
        F.when(utf8, F.col("_value")).otherwise(F.decode(data, "UTF-8")).alias("raw"),
        F.when(~utf8, F.base64(data)).alias("raw_base64"), "reason", "detail",
        *[F.when(accepted, column).alias(name) for name, column in kept.items()],
    )  # fmt: skip
