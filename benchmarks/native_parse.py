r"""The raw-event validation of docs/contracts.md as native Spark SQL expressions, for measurement only.

:func:`validate_lines_native` takes the same input as ``spark_jobs.parse_logs.validate_lines`` (the
``value`` column of ``spark.read.option("lineSep", "\n").text(...)``) and yields the same columns
(``_PARSED_LINE``, before duplicate detection) with ``from_json``, ``regexp_extract``/``rlike``,
``make_date`` and ``when`` chains: no Python UDF, no ``mapInPandas``. The checks run in the contract's
order and a line gets the first reason that applies; the constants come from
:mod:`spark_jobs.common.events`. ``detail`` is a short hint (the field, or the rule), not Python's
message, and ``raw`` of a line that is not UTF-8 shows U+FFFD where Python writes ``\xNN``.

The product keeps the Python validator (``spark_jobs.common.events.parse_raw``) because these
expressions cannot state the whole contract. It needs the session settings in :data:`REQUIRED_CONF`:
with JSON partial results on (Spark 3.5's default), a string that Jackson cannot decode (a bad ``\u``
escape) leaves that field null instead of failing the record, so a ``malformed_json`` line would pass as
``missing_field``; with ANSI on, ``make_date`` and the casts would fail the query instead of rejecting
the line. Where this version can still differ from the contract, on Spark 3.5 (Jackson 2.15):

- **JSON types.** ``from_json`` cannot tell ``1`` from ``"1"`` for a string field (it gives the text of
  any JSON value), and no Spark 3.5 expression returns a value's JSON type. A field's text settles it
  when no other JSON type could have written it (``e-17``, ``2024-01-31T10:00:00Z``); otherwise (digits,
  ``true``/``false``, a leading ``[``, ``{`` or ``"``) a regular expression reads the type on the line,
  at the first ``"name":``. That is wrong when the key is written with escapes (``"user\u005fid"``),
  when it occurs first inside a nested object, or when it is repeated with another type (Jackson, like
  Python, keeps the *last* copy).
- **Text after the object.** Jackson stops after the first complete value. Wrapping the line as
  ``[line]`` catches a second value (``{..} {..}``, ``{..},{..}``), and the line must end with ``}``;
  text after a stray ``]`` that still ends with ``}`` (``{..}]{..}``) passes.
- **Strings.** Jackson turns an escaped lone surrogate (``"\ud800"``) into ``?``; Python keeps it. Jackson
  also takes some non-ASCII characters as hex digits in a ``\u`` escape (``\u0`` then U+0435, Cyrillic
  small ie, then ``0f``), which Python rejects as ``malformed_json``.
- **Number length.** Jackson's own limit (``maxNumberLength``, 1,000 characters) stands in for
  ``MAX_INT_DIGITS``: it agrees for integers (1,000 digits, sign not counted) only because the two
  numbers happen to be equal, and it also rejects a float longer than that, which Python accepts.
- **Nesting** is checked exactly for valid JSON (brackets outside strings, folded with ``aggregate``,
  only on lines with more than ``MAX_NESTING`` opening brackets, as Python does); for text that is not
  JSON the reason is ``malformed_json`` either way.
- **UTF-8** is checked by decoding with Java's decoder and re-encoding: believed to agree with Python's
  strict decoder on which byte sequences are UTF-8 (both reject overlong forms and encoded surrogates),
  not proven.
- **Digits.** ``\d`` in ``_ISO_RE`` matches only ASCII digits in Java, where Python also takes other
  Unicode digits (``٢٠٢٤-01-31T…``). Whitespace (``str.strip``, ``str.isspace``) is exact: the
  characters are taken from Python.
- ``raw_base64`` equals Python's only with ``spark.sql.chunkBase64String.enabled=false`` (Spark 3.5.2+
  otherwise wraps ``base64`` output every 76 characters).

Checked against ``parse_raw`` on generated clickstreams and on the hypothesis lines of
``tests/unit/test_parse_logs_properties.py`` (tens of thousands of lines): the only differences seen were
of the kinds above (lone surrogates, the ``\u`` escape).

Speed: Spark fuses the projections after ``from_json`` into one generated method of about 17 KB of
bytecode, over HotSpot's 8,000-byte limit for JIT compilation, so by default it runs interpreted (about
3x slower here). :data:`JIT_JAVA_OPTION` lifts that limit; the benchmark starts its JVM with it.
"""

from __future__ import annotations

import sys
from typing import Dict, List, Sequence, Tuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.common.events import (
    _ISO_RE,
    _MAX_EPOCH_MS,
    EVENT_TYPES,
    INVALID_TIMESTAMP,
    INVALID_TYPE,
    INVALID_UTF8,
    LINE_TOO_LONG,
    MALFORMED_JSON,
    MAX_LINE_BYTES,
    MAX_NESTING,
    MISSING_FIELD,
    OUT_OF_RANGE_VALUE,
    RATING_MAX,
    RATING_MIN,
    REQUIRED_FIELDS,
    UNKNOWN_EVENT_TYPE,
)

# Session settings the expressions rely on (see the module docstring).
REQUIRED_CONF: Dict[str, str] = {
    "spark.sql.json.enablePartialResults": "false",
    "spark.sql.ansi.enabled": "false",
}
# HotSpot compiles methods of any size with this (see the module docstring).
JIT_JAVA_OPTION = "-XX:-DontCompileHugeMethods"
FIELDS = ("event_id", "user_id", "item_id", "event_type", "ts", "session_id", "value")
# Every field as text: a struct field typed otherwise would make Jackson fail on a wrong type, and that
# must be an invalid_type reject, not a parse error. The array is there to catch text after the object.
_SCHEMA = "array<struct<" + ",".join(f"`{name}`:string" for name in FIELDS) + ">>"
# Spark's JSON reader is lenient by default; these switch off what Python's json.loads rejects.
_JSON_OPTIONS: Dict[str, str] = {
    "allowNonNumericNumbers": "false",  # NaN, Infinity
    "allowSingleQuotes": "false",
    "allowUnquotedFieldNames": "false",
    "allowComments": "false",
    "allowNumericLeadingZeros": "false",
    "allowBackslashEscapingAnyCharacter": "false",
    "allowUnquotedControlChars": "false",
}
_JSON_WS_CHARS = (" ", "\t", "\r", "\n")
_JSON_WS = r"[ \t\r\n]"
# Exactly what Python's str.strip removes (str.isspace), taken from Python itself; all in the BMP.
_PY_SPACE_CHARS = tuple(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
_PY_SPACE = "[" + "".join(f"\\u{ord(c):04x}" for c in _PY_SPACE_CHARS) + "]"
_BLANK_START = (" ", "\t", "\r", "\n", "\x0b", "\x0c", "\ufeff")
_BLANK_LINE = r"^(?:\uFEFF)?[ \t\r\n\x0B\f]*$"  # events.is_blank_bytes: ASCII whitespace after a BOM
# A JSON string literal (unrolled loop, possessive: no backtracking, no deep regex recursion).
_JSON_STRING = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
# More than MAX_NESTING opening brackets: Python's cheap test before it measures the depth.
_MANY_OPENERS = r"^(?:[^\[{]*+[\[{]){" + str(MAX_NESTING + 1) + "}"
# Jackson's text of a JSON number (as written, or re-serialised from a double: "1.0E-5").
_NUMBER = r"^-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?$"
_DIGITS = r"^-?[0-9]++$"


def _first(text: Column) -> Column:
    return F.substring(text, 1, 1)


def _last(text: Column) -> Column:
    return F.substring(text, -1, 1)


def _is_blank(text: Column) -> Column:
    """``not text.strip()`` for a non-null text (the regex only runs when the first character is space)."""
    return (text == "") | (_first(text).isin(*_PY_SPACE_CHARS) & text.rlike(f"^{_PY_SPACE}*+$"))


def _strip(text: Column) -> Column:
    """``text.strip()`` (the regex only runs when the text starts or ends with space)."""
    spaced = _first(text).isin(*_PY_SPACE_CHARS) | _last(text).isin(*_PY_SPACE_CHARS)
    return F.when(spaced, F.regexp_replace(text, f"^{_PY_SPACE}++|{_PY_SPACE}++$", "")).otherwise(text)


def _maybe_not_string(text: Column) -> Column:
    """Whether ``text`` (a field as from_json gives it) could be the text of a number, boolean, array or
    object rather than of a string. When it cannot, the value was a JSON string and the line need not be
    searched; when it can (``17``, ``true``, ``[1]``, ``"Infinity"``), only the line can tell."""
    first = _first(text)
    return (
        F.when(first.isin("[", "{", '"'), True)
        .when(first.isin(*"-0123456789"), text.rlike(_NUMBER))
        .otherwise(text.isin("true", "false"))
    )


def _token(line: Column, name: str) -> Column:
    """The start of field ``name``'s JSON value in the line (caveats in the module docstring): ``"`` for a
    string, a number's digits (ending in ``.``/``e``/``E`` for a float), ``t``/``f``, ``n``, ``[``/``{``;
    ``""`` when the key is not found."""
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
    """events.parse_timestamp_us: UTC microseconds from epoch milliseconds ``ms`` (a long, or null) or
    the 8 groups of ``_ISO_RE`` matched on the stripped ISO text (null or ``""`` when it did not match),
    else null. Computed from the fields, with no time-zone lookup: Java zone offsets stop at ±18:00
    where Python's go to ±23:59."""
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
    valid = (
        (groups[0] != "")  # the pattern matched (its first group is never empty)
        & date.isNotNull()
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
        & (utc | ((off_hours <= 23) & (off_minutes <= 59)))
    )
    us = seconds * 1_000_000 + micros
    from_ms = F.when((ms >= 0) & (ms <= _MAX_EPOCH_MS), ms * 1000)
    return F.coalesce(from_ms, F.when(valid & (us >= 0), us))


def _first_match(checks: Sequence[Tuple[Column, Column]]) -> Column:
    """``CASE WHEN c1 THEN v1 WHEN c2 THEN v2 ... END`` (null when no condition holds)."""
    chain = F.when(*checks[0])
    for condition, result in checks[1:]:
        chain = chain.when(condition, result)
    return chain


def validate_lines_native(lines: DataFrame) -> DataFrame:
    """Raw lines (one column ``value``) -> one row per non-blank line with the columns of parse_logs'
    ``_PARSED_LINE`` (``raw, raw_base64, reason, detail, event_id, user_id, item_id, event_type,
    event_ts_us, session_id, value``; ``value`` as text, timestamps in UTC microseconds).

    Built in steps, each a projection, so that every regex and the JSON parse run at most once per line
    (Spark does not inline a projection's expensive result into several uses), and with cheap character
    tests in front of the regexes so that most lines skip them. Raises ValueError if the session does
    not have :data:`REQUIRED_CONF`.
    """
    conf = lines.sparkSession.conf
    wrong = {k: conf.get(k) for k, v in REQUIRED_CONF.items() if conf.get(k).lower() != v}
    if wrong:
        raise ValueError(f"validate_lines_native needs {REQUIRED_CONF}; the session has {wrong}")

    value = F.col("value")
    # startswith compares bytes: a character test would count the line's characters first.
    spaced = F.lit(False)
    for char in _BLANK_START:
        spaced = spaced | value.startswith(char)
    blank = (value == "") | (spaced & value.rlike(_BLANK_LINE))
    lines = lines.where(~blank).select(
        value.alias("_value"),
        (F.encode(value, "UTF-8") == value.cast("binary")).alias("_utf8"),  # Java's decoder: bad -> U+FFFD
        (F.octet_length(value) <= MAX_LINE_BYTES).alias("_short"),
        F.when(value.startswith("\ufeff"), F.expr("substr(value, 2)")).otherwise(value).alias("_text"),
    )

    # The JSON parse, and the two things Jackson does not check: nesting depth, text after the object.
    text = F.col("_text")
    parse = F.col("_utf8") & F.col("_short")  # Python stops at these two: no JSON parse either
    records = F.from_json(F.concat(F.lit("["), text, F.lit("]")), _SCHEMA, _JSON_OPTIONS)
    too_deep = text.rlike(_MANY_OPENERS) & (_nesting_depth(text) > MAX_NESTING)
    # As for blank lines: endswith, not a character test.
    ends_with_space = F.lit(False)
    for char in _JSON_WS_CHARS:
        ends_with_space = ends_with_space | text.endswith(char)
    ends_object = text.endswith("}") | (ends_with_space & text.rlike(r"\}" + _JSON_WS + "*+$"))
    lines = lines.select(
        "_value",
        "_utf8",
        "_short",
        "_text",
        F.when(parse, records).alias("_records"),
        F.when(parse, too_deep | ~ends_object).alias("_bad_text"),
    )

    records = F.col("_records")
    record = records[0]
    malformed = records.isNull() | (F.size(records) != 1) | record.isNull() | F.col("_bad_text")
    lines = lines.select(
        "_value",
        "_utf8",
        "_short",
        "_text",
        malformed.alias("_malformed"),
        *[record[name].alias(name) for name in FIELDS],
    )

    # JSON types: from the field's text when it proves a string, else from the line (see _token).
    field: Dict[str, Column] = {name: F.col(name) for name in FIELDS}
    maybe = {name: _maybe_not_string(field[name]) for name in FIELDS}
    maybe["user_id"] = maybe["user_id"] & ~field["user_id"].rlike(_DIGITS)  # int or string: both valid
    maybe["item_id"] = maybe["item_id"] & ~field["item_id"].rlike(_DIGITS)
    maybe["event_type"] = ~field["event_type"].isin(*EVENT_TYPES) & maybe["event_type"]
    lines = lines.select(
        "_value",
        "_utf8",
        "_short",
        "_malformed",
        *FIELDS,
        *[F.when(maybe[name], _token(text, name)).alias(f"_tok_{name}") for name in FIELDS],
    )

    token: Dict[str, Column] = {name: F.col(f"_tok_{name}") for name in FIELDS}
    is_string = {n: token[n].isNull() | token[n].startswith('"') for n in FIELDS}
    is_int = {n: token[n].rlike(_DIGITS) for n in FIELDS}  # null (false) when the text proved a string
    is_number = {n: F.coalesce(_first(token[n]).isin(*"-0123456789"), F.lit(False)) for n in FIELDS}
    ts_is_int = F.coalesce(is_int["ts"], F.lit(False))
    lines = lines.select(
        "_value",
        "_utf8",
        "_short",
        "_malformed",
        *FIELDS,
        *[is_string[n].alias(f"_str_{n}") for n in ("event_id", "event_type", "session_id")],
        *[(is_string[n] | is_int[n]).alias(f"_str_int_{n}") for n in ("user_id", "item_id", "ts")],
        is_number["value"].alias("_num_value"),
        F.when(ts_is_int, field["ts"].cast("long")).alias("_ts_ms"),
        F.when(~ts_is_int & is_string["ts"], _strip(field["ts"])).alias("_ts_iso"),
    )

    iso = F.col("_ts_iso")
    pattern = _ISO_RE.pattern
    lines = lines.select("*", *[F.regexp_extract(iso, pattern, k).alias(f"_iso_{k}") for k in range(1, 9)])

    # 1e400 reaches us as the text "Infinity" in quotes (Jackson re-serialises the double it parsed).
    number = F.when(F.col("_num_value"), F.regexp_replace(field["value"], '"', "").cast("double"))
    ts_us = _timestamp_us(F.col("_ts_ms"), [F.col(f"_iso_{k}") for k in range(1, 9)])
    lines = lines.select(
        "_value",
        "_utf8",
        "_short",
        "_malformed",
        *FIELDS,
        *[F.col(c) for c in lines.columns if c.startswith("_str_")],
        "_num_value",
        ts_us.alias("_ts_us"),
        number.alias("_number"),
    )

    number, event_type, ts_us = F.col("_number"), field["event_type"], F.col("_ts_us")
    has_value, has_session = field["value"].isNotNull(), field["session_id"].isNotNull()
    checks: List[Tuple[Column, str, Column]] = [
        (~F.col("_utf8"), INVALID_UTF8, F.lit("not UTF-8")),
        (~F.col("_short"), LINE_TOO_LONG, F.concat(F.octet_length("_value"), F.lit(" bytes"))),
        (F.col("_malformed"), MALFORMED_JSON, F.lit("not one JSON object, or nested too deep")),
    ]
    for name in REQUIRED_FIELDS:
        checks.append((field[name].isNull() | _is_blank(field[name]), MISSING_FIELD, F.lit(name)))
    checks += [
        (~F.col("_str_event_id"), INVALID_TYPE, F.lit("event_id")),
        (~F.col("_str_int_user_id"), INVALID_TYPE, F.lit("user_id")),
        (~F.col("_str_int_item_id"), INVALID_TYPE, F.lit("item_id")),
        (~F.col("_str_event_type"), INVALID_TYPE, F.lit("event_type")),
        (~F.col("_str_int_ts"), INVALID_TYPE, F.lit("ts")),
        (has_session & ~F.col("_str_session_id"), INVALID_TYPE, F.lit("session_id")),
        (has_value & ~F.col("_num_value"), INVALID_TYPE, F.lit("value")),
        (~event_type.isin(*EVENT_TYPES), UNKNOWN_EVENT_TYPE, F.substring(event_type, 1, 100)),
        ((event_type == "rating") & ~has_value, MISSING_FIELD, F.lit("value")),
        (ts_us.isNull(), INVALID_TIMESTAMP, F.substring(field["ts"], 1, 100)),
        (F.isnan(number) | (F.abs(number) == float("inf")), OUT_OF_RANGE_VALUE, F.lit("value not finite")),
        ((event_type == "rating") & ~number.between(RATING_MIN, RATING_MAX), OUT_OF_RANGE_VALUE,
         F.lit(f"rating outside [{RATING_MIN}, {RATING_MAX}]")),
        (number < 0, OUT_OF_RANGE_VALUE, F.lit("negative value")),
    ]  # fmt: skip
    verdict = _first_match(
        [(c, F.struct(F.lit(name).alias("r"), hint.alias("d"))) for c, name, hint in checks]
    )
    lines = lines.select("_value", "_utf8", *FIELDS, "_ts_us", "_number", verdict.alias("_verdict"))
    lines = lines.select("*", F.col("_verdict.r").alias("reason"), F.col("_verdict.d").alias("detail"))

    accepted = F.col("reason").isNull()
    utf8, data = F.col("_utf8"), F.col("_value").cast("binary")
    return lines.select(
        F.when(utf8, F.col("_value")).otherwise(F.decode(data, "UTF-8")).alias("raw"),
        F.when(~utf8, F.base64(data)).alias("raw_base64"),
        "reason",
        "detail",
        *[F.when(accepted, field[n]).alias(n) for n in ("event_id", "user_id", "item_id", "event_type")],
        F.when(accepted, ts_us).alias("event_ts_us"),
        F.when(accepted, field["session_id"]).alias("session_id"),
        F.when(accepted, number.cast("string")).alias("value"),
    )
