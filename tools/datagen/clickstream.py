"""Seeded synthetic clickstream in the raw event contract (docs/contracts.md), with exactly counted bad lines.

World model (fixed by seed, users, items, groups, zipf):
- items have a global power-law popularity (Zipf exponent ``zipf`` over a random popularity ranking);
- every user belongs to one latent taste group, and every group owns a disjoint, contiguous slice of the
  item indices; an event's item comes from the user's own slice (Zipf over the slice, most globally
  popular first) with probability ``in_group_prob``, else from the global power law. Users keep coming
  back to their group's items day after day, so collaborative filtering has real signal that a popularity
  baseline cannot see;
- user activity is log-normal (a few heavy users, a long tail); event types are ~70% view, 18% click,
  7% add_to_cart, 4% purchase, 1% rating.

Counting model: ``events`` valid events (= exactly the expected accepted count), plus bad lines so that
they are ``malformed_ratio`` of all non-blank lines, plus blank lines (``blank_ratio`` of non-blank lines,
not counted by the contract). Every bad line is checked with :func:`spark_jobs.common.events.parse_line`
while it is generated, so ``_manifest.json`` states the exact expected parse_logs outcome per day.

Streaming: events are generated in numpy batches of :data:`CHUNK_EVENTS` and written at once, so memory
stays flat whatever ``events`` is. Same arguments and seed give byte-identical files (gzip included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from spark_jobs.common import events as ev
from tools.datagen import MANIFEST_NAME, staged_output

FORMAT_VERSION = 1
DAY_MS = 86_400_000
# Valid events per numpy batch: bounds memory (~15 MB of line text) and amortises numpy call overhead.
# Part of the output's identity: changing it changes the random stream, hence the bytes.
CHUNK_EVENTS = 65_536
# Fastest deflate level: ~190 MB/s vs ~60 MB/s at the default 6 for ~25% larger files; generation speed
# matters more here (benchmarks write 10M events).
GZIP_LEVEL = 1
# One valid line in VERIFY_EVERY is re-parsed with parse_line while generating (all of them with verify_all).
VERIFY_EVERY = 97
SESSION_BUCKET_MS = 1_800_000  # a session is one user's 30-minute window

EVENT_TYPES = ev.EVENT_TYPES  # ("view", "click", "add_to_cart", "purchase", "rating")
EVENT_TYPE_P = (0.70, 0.18, 0.07, 0.04, 0.01)
RATING = EVENT_TYPES.index("rating")
PURCHASE = EVENT_TYPES.index("purchase")

# Half-star ratings 0.5..5.0 (index k -> (k + 1) / 2). Whole stars are written as JSON integers ("4"),
# half stars as decimals ("4.5"): both are numbers and normalise to the same float.
RATING_TOKENS = tuple(str((k + 1) // 2) if k % 2 == 1 else f"{(k + 1) / 2:.1f}" for k in range(10))
# Users rate their own group's items higher: weights over the 10 half-star values.
RATING_W_IN = (0.5, 0.5, 1, 1, 2, 3, 6, 9, 7, 6)
RATING_W_OUT = (2, 3, 4, 5, 6, 6, 5, 4, 2, 1)

# How ts is written: ISO UTC "Z" with milliseconds, ISO "Z" whole seconds, ISO with a non-UTC offset
# (milliseconds), integer epoch milliseconds.
TS_ISO_Z_MS, TS_ISO_Z_S, TS_ISO_OFFSET, TS_EPOCH_MS = range(4)
TS_FORM_P = (0.35, 0.15, 0.25, 0.25)
# (offset in minutes, how it is written): half and quarter hours, both signs, the ±HHMM form, +00:00.
OFFSETS = (
    (330, "+05:30"),
    (-480, "-08:00"),
    (540, "+09:00"),
    (-210, "-03:30"),
    (345, "+0545"),
    (60, "+01:00"),
    (-300, "-05:00"),
    (0, "+00:00"),
)
OFFSET_MS = np.array([minutes * 60_000 for minutes, _ in OFFSETS], dtype=np.int64)

# Ids: a share of entities have numeric ids; such an entity is written as a JSON integer (17) or as its
# string form ("17") at random, which normalise to the same id. Other entities are always "u17" / "i42".
USER_NUMERIC_P, ITEM_NUMERIC_P, NUMERIC_AS_STRING_P = 0.3, 0.4, 0.3
SESSION_P, SESSION_NULL_P = 0.90, 0.01  # session_id present / explicitly null (same as absent)
PURCHASE_VALUE_P = 0.6  # purchases carrying the item's price as value
EXTRA_FIELD_P = 0.01  # unknown extra fields, which the parser must ignore
EXTRA_FIELDS = (
    ',"client":"ios"',
    ',"app_version":"4.2.1"',
    ',"experiment":{"id":"exp-7","arm":1}',
    ',"referrer":"https://café.example/"',  # non-ASCII, written as UTF-8
    ',"note":"caf\\u00e9"',  # a JSON escape
    ',"position":3',
    ',"debug":null',
)
BLANK_LINES = ("", "   ", "\t")

# Share of each reject reason among bad lines (every reason gets at least one line per day when a day has
# at least as many bad lines as there are reasons).
BAD_REASON_W = {
    ev.MALFORMED_JSON: 0.18,
    ev.MISSING_FIELD: 0.16,
    ev.INVALID_TYPE: 0.16,
    ev.UNKNOWN_EVENT_TYPE: 0.10,
    ev.INVALID_TIMESTAMP: 0.16,
    ev.OUT_OF_RANGE_VALUE: 0.10,
    ev.DUPLICATE_EVENT_ID: 0.14,
    ev.INVALID_UTF8: 0.04,
    # 1 MiB each: rare, so a large day does not become mostly padding.
    ev.LINE_TOO_LONG: 0.0005,
}
REASONS = ev.REJECT_REASONS
if set(BAD_REASON_W) != set(REASONS):  # the contract grew a reason: the generator must learn it
    raise RuntimeError("BAD_REASON_W must cover exactly spark_jobs.common.events.REJECT_REASONS")

DEDUP_RULE = (
    "Among lines of one day sharing an event_id, parse_logs keeps the one with the smallest "
    "(event timestamp, raw line) and rejects the others as duplicate_event_id. Generated duplicates are "
    "either an exact repeat of an earlier valid line or carry a strictly later timestamp, so the first "
    "occurrence is always the survivor."
)


def _cdf(weights: Union[Sequence[float], np.ndarray]) -> np.ndarray:
    """Cumulative distribution (float64, last value exactly 1.0) for sampling with searchsorted."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


def _sample(cdf: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Indices drawn from ``cdf`` for uniforms in [0, 1)."""
    return np.searchsorted(cdf, uniform, side="right")


def _zipf_cdf(n: int, exponent: float) -> np.ndarray:
    """CDF of a Zipf law over ranks 1..n (rank 1 most likely)."""
    return _cdf(np.arange(1, n + 1, dtype=np.float64) ** -exponent)


def _split(total: int, sizes: Sequence[int]) -> List[int]:
    """Split ``total`` proportionally to ``sizes`` (exact integers, summing to ``total``; 0 where size 0)."""
    cum = np.cumsum(np.asarray(sizes, dtype=np.int64))
    if len(cum) == 0 or cum[-1] == 0:
        return [0] * len(sizes)
    bounds = (total * cum) // cum[-1]
    return np.diff(bounds, prepend=0).tolist()


ETYPE_CDF = _cdf(EVENT_TYPE_P)
TS_FORM_CDF = _cdf(TS_FORM_P)
RATING_CDF_IN, RATING_CDF_OUT = _cdf(RATING_W_IN), _cdf(RATING_W_OUT)


@dataclass(frozen=True)
class World:
    """The latent structure all days are sampled from. ``U`` users, ``I`` items, ``G`` groups."""

    user_cdf: np.ndarray  # (U,) cumulative activity share
    user_group: np.ndarray  # (U,) taste group of each user
    global_cdf: np.ndarray  # (I,) cumulative Zipf share by global popularity rank
    rank_item: np.ndarray  # (I,) item index at each global popularity rank
    slice_items: Tuple[np.ndarray, ...]  # G arrays: the group's items, most popular first
    slice_cdf: Tuple[np.ndarray, ...]  # G arrays: cumulative Zipf share over slice_items
    user_tokens: List[str]  # (2U,) JSON tokens of user u: [2u] usual form, [2u + 1] alternative form
    item_tokens: List[str]  # (2I,) same layout for items
    price_tokens: List[str]  # (I,) JSON number: each item's price


def build_world(seed: int, users: int, items: int, groups: int, zipf: float) -> World:
    """The deterministic world for these parameters (independent of days and event counts)."""
    rng = np.random.default_rng([seed, 0])
    user_cdf = _cdf(rng.lognormal(0.0, 1.0, users))
    user_group = rng.integers(0, groups, users)
    rank_item = rng.permutation(items)
    item_rank = np.empty(items, dtype=np.int64)
    item_rank[rank_item] = np.arange(items)
    slices = tuple(s[np.argsort(item_rank[s])] for s in np.array_split(np.arange(items), groups))

    def tokens(numeric: np.ndarray, prefix: str) -> List[str]:
        out: List[str] = []
        for index, is_numeric in enumerate(numeric.tolist()):
            number = index + 1
            out += [str(number), f'"{number}"'] if is_numeric else [f'"{prefix}{number}"'] * 2
        return out

    user_tokens = tokens(rng.random(users) < USER_NUMERIC_P, "u")
    item_tokens = tokens(rng.random(items) < ITEM_NUMERIC_P, "i")
    prices = np.round(rng.lognormal(3.0, 0.8, items), 2)
    whole = rng.random(items) < 0.2  # some prices are JSON integers
    price_tokens = [str(round(p)) if w else f"{p:.2f}" for p, w in zip(prices.tolist(), whole.tolist())]
    return World(
        user_cdf=user_cdf,
        user_group=user_group,
        global_cdf=_zipf_cdf(items, zipf),
        rank_item=rank_item,
        slice_items=slices,
        slice_cdf=tuple(_zipf_cdf(len(s), zipf) for s in slices),
        user_tokens=user_tokens,
        item_tokens=item_tokens,
        price_tokens=price_tokens,
    )


def _valid_lines(
    world: World,
    rng: np.random.Generator,
    n: int,
    t0_ms: int,
    t1_ms: int,
    first_seq: int,
    day_key: str,
    in_group_prob: float,
) -> Tuple[List[str], List[int]]:
    """``n`` valid event lines with sorted UTC times in [t0_ms, t1_ms) (epoch ms), and those times."""
    # Every random array is drawn whatever the content, so the stream (hence the output) is reproducible.
    user = _sample(world.user_cdf, rng.random(n))
    group = world.user_group[user]
    item = world.rank_item[_sample(world.global_cdf, rng.random(n))]
    in_group = rng.random(n) < in_group_prob
    pick = rng.random(n)
    for g, (members, cdf) in enumerate(zip(world.slice_items, world.slice_cdf)):
        mask = in_group & (group == g)
        item[mask] = members[_sample(cdf, pick[mask])]
    etype = _sample(ETYPE_CDF, rng.random(n))
    ts = t0_ms + np.sort(rng.integers(0, max(1, t1_ms - t0_ms), n))
    form = _sample(TS_FORM_CDF, rng.random(n))
    offset = rng.integers(0, len(OFFSETS), n)
    # ISO text of the local wall-clock time: UTC + offset for the offset form, UTC otherwise.
    local = ts + np.where(form == TS_ISO_OFFSET, OFFSET_MS[offset], 0)
    iso = np.datetime_as_string(local.astype("datetime64[ms]"), unit="ms").tolist()
    user_tok = (2 * user + (rng.random(n) < NUMERIC_AS_STRING_P)).tolist()
    item_tok = (2 * item + (rng.random(n) < NUMERIC_AS_STRING_P)).tolist()
    session = rng.random(n)
    rating = np.where(in_group, _sample(RATING_CDF_IN, rng.random(n)), _sample(RATING_CDF_OUT, rng.random(n)))
    priced = rng.random(n) < PURCHASE_VALUE_P
    extra = np.where(rng.random(n) < EXTRA_FIELD_P, rng.integers(0, len(EXTRA_FIELDS), n), -1)

    # Plain lists: indexing them in the loop below is several times faster than indexing numpy arrays.
    rating_l, priced_l, extra_l, offset_l = rating.tolist(), priced.tolist(), extra.tolist(), offset.tolist()
    utoks, itoks, ptoks = world.user_tokens, world.item_tokens, world.price_tokens
    offset_text = [text for _, text in OFFSETS]
    type_text = [f',"event_type":"{name}","ts":' for name in EVENT_TYPES]
    ts_list = ts.tolist()
    lines: List[str] = []
    append = lines.append
    for k, (u, ut, it, et, f, t, s) in enumerate(
        zip(
            user.tolist(),
            user_tok,
            item_tok,
            etype.tolist(),
            form.tolist(),
            ts_list,
            session.tolist(),
        )
    ):
        if f == TS_EPOCH_MS:
            ts_tok = str(t)
        elif f == TS_ISO_Z_MS:
            ts_tok = f'"{iso[k]}Z"'
        elif f == TS_ISO_Z_S:
            ts_tok = f'"{iso[k][:19]}Z"'
        else:
            ts_tok = f'"{iso[k]}{offset_text[offset_l[k]]}"'
        if s < SESSION_P:
            tail = f',"session_id":"s{u + 1}-{t // SESSION_BUCKET_MS}"'
        elif s < SESSION_P + SESSION_NULL_P:
            tail = ',"session_id":null'
        else:
            tail = ""
        if et == RATING:
            tail += ',"value":' + RATING_TOKENS[rating_l[k]]
        elif et == PURCHASE and priced_l[k]:
            tail += ',"value":' + ptoks[it >> 1]
        if extra_l[k] >= 0:
            tail += EXTRA_FIELDS[extra_l[k]]
        append(
            f'{{"event_id":"e-{day_key}-{first_seq + k}","user_id":{utoks[ut]},"item_id":{itoks[it]}'
            f"{type_text[et]}{ts_tok}{tail}}}"
        )
    return lines, ts_list


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _iso_utc(ms: int) -> str:
    """'YYYY-MM-DDTHH:MM:SS.mmm' (UTC wall clock, no offset) for epoch milliseconds."""
    return str(np.datetime_as_string(np.datetime64(ms, "ms"), unit="ms"))


class _BadLines:
    """Turns a valid anchor line into a bad line with a chosen reject reason (several variants each)."""

    def __init__(self, world: World, rng: np.random.Generator, day_end_ms: int) -> None:
        self.world = world
        self.rng = rng
        self.day_end_ms = day_end_ms

    def _pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.rng.integers(len(options)))]

    def make(self, reason: str, anchor: str, anchor_ts_ms: int, event_id: str) -> str:
        """A line that parse_line rejects with ``reason`` (for duplicates: a valid line repeating the
        anchor's event_id). ``event_id`` is a fresh id for the non-duplicate reasons."""
        if reason == ev.DUPLICATE_EVENT_ID:
            return self._duplicate(anchor, anchor_ts_ms)
        rec = json.loads(anchor)
        rec["event_id"] = event_id
        return getattr(self, "_" + reason)(rec, anchor_ts_ms)

    def _malformed_json(self, rec: Dict[str, Any], ts_ms: int) -> str:
        line = _compact(rec)
        variant = int(self.rng.integers(9))
        if variant == 0:  # truncated: any proper prefix of an object is invalid JSON
            return line[: int(self.rng.integers(1, len(line)))]
        if variant == 1:  # valid JSON, but an array holding the event
            return "[" + line + "]"
        if variant == 2:  # an array of the values
            return _compact(list(rec.values()))
        if variant == 3:  # trailing data after the object
            return line + ' {"x":1}'
        if variant == 4:  # NaN is not JSON (Python's json would accept it by default)
            return line[:-1] + ',"value":NaN}'
        if variant == 5:  # a Python dict repr, single quotes
            return repr(rec)
        if variant == 6:  # a bare scalar
            return self._pick(('"view"', "42", "null", "true"))
        if variant == 7:  # an unquoted key
            return line.replace('"event_id"', "event_id", 1)
        return line[:-1] + ',"session_id":"s\tx"}'  # a raw control character inside a string

    def _invalid_utf8(self, rec: Dict[str, Any], ts_ms: int) -> str:
        # Lone surrogates are written as the bytes they escape (surrogateescape): not UTF-8 on disk.
        line = _compact(rec)
        variant = int(self.rng.integers(4))
        if variant == 0:  # Latin-1 text in a UTF-8 file
            return line.replace('"view"', '"vi\udce9w"', 1).replace('"event_id":"', '"event_id":"\udce9', 1)
        if variant == 1:  # a multi-byte sequence cut short
            return line[:-2] + "\udce2\udc82" + line[-2:]
        if variant == 2:  # a stray byte before the object
            return "\udcff" + line
        return line.replace('"ts"', '"t\udcc0\udcafs"', 1)  # an overlong encoding of "/"

    def _line_too_long(self, rec: Dict[str, Any], ts_ms: int) -> str:
        rec["session_id"] = "s" * (ev.MAX_LINE_BYTES + 1)  # valid JSON, but longer than any event
        return _compact(rec)

    def _missing_field(self, rec: Dict[str, Any], ts_ms: int) -> str:
        variant = int(self.rng.integers(4))
        field = self._pick(ev.REQUIRED_FIELDS)
        if variant == 0:
            del rec[field]
        elif variant == 1:
            rec[field] = None
        elif variant == 2:
            rec[field] = self._pick(("", "  "))
        else:  # a rating needs a value: absent or null
            rec["event_type"] = "rating"
            rec.pop("value", None)
            if self.rng.random() < 0.5:
                rec["value"] = None
        return _compact(rec)

    def _invalid_type(self, rec: Dict[str, Any], ts_ms: int) -> str:
        field, value = self._pick(
            (
                ("event_id", 123456),
                ("event_id", ["e-1"]),
                ("user_id", 17.5),
                ("user_id", True),
                ("user_id", {"id": 17}),
                ("item_id", 42.0),
                ("item_id", [42]),
                ("event_type", 1),
                ("event_type", ["view"]),
                ("ts", float(ts_ms)),
                ("ts", True),
                ("ts", {"ms": ts_ms}),
                ("session_id", 12345),
                ("session_id", False),
                ("value", "4.5"),
                ("value", True),
            )
        )
        rec[field] = value
        return _compact(rec)

    def _unknown_event_type(self, rec: Dict[str, Any], ts_ms: int) -> str:
        rec["event_type"] = self._pick(
            ("like", "VIEW", "Click", "add-to-cart", "addToCart", "share", "purchase ", "page_view", "rate")
        )
        return _compact(rec)

    def _invalid_timestamp(self, rec: Dict[str, Any], ts_ms: int) -> str:
        iso = _iso_utc(ts_ms)  # e.g. 2024-01-31T12:34:56.789
        date, clock = iso[:10], iso[11:19]
        rec["ts"] = self._pick(
            (
                iso[:19],  # naive: no offset
                iso,  # naive with milliseconds
                f"{date[:4]}-02-30T{clock}Z",  # impossible date
                f"{date[:4]}-13-{date[8:]}T{clock}Z",  # month 13
                f"{date}T24:00:00Z",  # hour 24
                f"{date}T{clock}+25:00",  # offset out of range
                date,  # a date, no time
                f"{date.replace('-', '/')} {clock}Z",
                str(ts_ms),  # epoch milliseconds, but as a string
                "1969-12-31T23:59:59Z",  # before the epoch
                -ts_ms,  # negative epoch milliseconds
                10**16,  # epoch milliseconds past year 9999
                self._pick(("yesterday", "not-a-timestamp", "NaN", "2024-01-31T12:00:00ZZ")),
            )
        )
        return _compact(rec)

    def _out_of_range_value(self, rec: Dict[str, Any], ts_ms: int) -> str:
        variant = int(self.rng.integers(4))
        if variant == 0:  # a rating outside [0.5, 5]
            rec["event_type"] = "rating"
            rec["value"] = self._pick((7, 0.2, 0, 5.5, -1, 10.0))
            return _compact(rec)
        rec["event_type"] = self._pick(("purchase", "view", "add_to_cart"))
        rec.pop("value", None)
        if variant == 1:  # negative amounts
            rec["value"] = self._pick((-3.5, -1, -0.01))
            return _compact(rec)
        # Numbers valid in JSON that overflow a double: 1e400 parses as inf, a 401-digit integer overflows.
        return _compact(rec)[:-1] + ',"value":' + ("1e400" if variant == 2 else "1" + "0" * 400) + "}"

    def _duplicate(self, anchor: str, ts_ms: int) -> str:
        # An exact repeat, or the same event_id with another payload and a strictly later timestamp (still
        # inside the day): either way the earlier line wins parse_logs' (timestamp, raw line) tie-break.
        room = self.day_end_ms - 1 - ts_ms
        if self.rng.random() < 0.5 or room < 1000:
            return anchor
        rec = json.loads(anchor)
        later = ts_ms + int(self.rng.integers(1000, min(600_000, room) + 1))
        rec["ts"] = later if self.rng.random() < 0.5 else _iso_utc(later) + "Z"
        item = int(self.rng.integers(len(self.world.item_tokens) // 2))
        rec["item_id"] = json.loads(self.world.item_tokens[2 * item])
        return _compact(rec)


def _reason_counts(n_bad: int) -> np.ndarray:
    """Bad lines per reason (in REASONS order): at least one each if possible, the rest by weight."""
    k = len(REASONS)
    base = np.ones(k, dtype=np.int64) if n_bad >= k else np.zeros(k, dtype=np.int64)
    rest = n_bad - int(base.sum())
    exact = rest * np.array([BAD_REASON_W[r] for r in REASONS]) / sum(BAD_REASON_W.values())
    counts = np.floor(exact).astype(np.int64)
    # Largest remainders first; ties broken by reason order (stable sort) so the result is deterministic.
    for index in np.argsort(-(exact - counts), kind="stable")[: rest - int(counts.sum())]:
        counts[index] += 1
    return base + counts


class _PartWriter:
    """One output part file (plain or gzip with a fixed header, so bytes are reproducible).

    Compression and disk writes run on a background thread (zlib and file I/O release the GIL), overlapping
    with the generation of the next chunk; at most one chunk waits, so memory stays flat.
    """

    def __init__(self, path: Path, compress: bool) -> None:
        self.path = path
        self._raw: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._out: BinaryIO = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=GZIP_LEVEL)
            if compress
            else self._raw
        )
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: Optional[Future] = None
        self.lines = 0
        self.blank_lines = 0

    def write(self, lines: List[str], blank: int) -> None:
        """Queue ``lines`` (including ``blank`` blank ones) for writing, one per line."""
        # surrogateescape: lone surrogates in a generated line stand for bytes that are not UTF-8.
        data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape") if lines else b""
        if self._pending is not None:
            self._pending.result()  # re-raises a write error here
        self._pending = self._pool.submit(self._out.write, data)
        self.lines += len(lines) - blank
        self.blank_lines += blank

    def close(self) -> int:
        """Flush, close and return the size on disk in bytes."""
        try:
            if self._pending is not None:
                self._pending.result()
        finally:
            self._pool.shutdown()
            if self._out is not self._raw:
                self._out.close()
            self._raw.close()
        return self.path.stat().st_size


def _check(line: str, expected: Optional[str], day: dt.date) -> ev.ParsedLine:
    """parse_line's verdict on a generated line, which must be ``expected`` (None: accepted on ``day``)."""
    parsed = ev.parse_raw(line.encode("utf-8", "surrogateescape")).parsed
    if parsed.reason != expected:
        raise AssertionError(f"generated line meant as {expected}, parsed as {parsed.reason}: {line!r}")
    if expected is None:
        utc_day = (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=parsed.event_ts_us)).date()
        if utc_day != day:
            raise AssertionError(f"line for {day} has UTC day {utc_day}: {line!r}")
    return parsed


def _check_duplicate(line: str, original: str, day: dt.date) -> None:
    dup, first = _check(line, None, day), _check(original, None, day)
    if dup.event_id != first.event_id or (dup.event_ts_us, line) < (first.event_ts_us, original):
        raise AssertionError(f"duplicate would not lose to the original: {line!r} vs {original!r}")


def _write_day(
    world: World,
    day: dt.date,
    n_valid: int,
    stage: Path,
    *,
    seed: int,
    in_group_prob: float,
    malformed_ratio: float,
    blank_ratio: float,
    compress: bool,
    files_per_day: int,
    verify_all: bool,
) -> Dict[str, Any]:
    """Write one ``dt=`` folder and return its manifest entry."""
    # Each day has its own stream (keyed by the date), so a day's content does not depend on generation
    # order and days could be generated in parallel.
    rng = np.random.default_rng([seed, 1, day.toordinal()])
    day_key = day.strftime("%Y%m%d")
    day_start = (day - dt.date(1970, 1, 1)).days * DAY_MS
    n_bad = round(n_valid * malformed_ratio / (1.0 - malformed_ratio)) if n_valid else 0
    n_blank = round((n_valid + n_bad) * blank_ratio)
    per_reason = _reason_counts(n_bad)
    reasons = np.repeat(np.arange(len(REASONS)), per_reason)
    rng.shuffle(reasons)
    bad_lines = _BadLines(world, rng, day_start + DAY_MS)

    folder = stage / f"dt={day.isoformat()}"
    folder.mkdir()
    suffix = ".jsonl.gz" if compress else ".jsonl"
    file_valid = _split(n_valid, [1] * files_per_day)
    file_bad = _split(n_bad, file_valid)
    file_blank = _split(n_blank, file_valid)
    files: List[Dict[str, Any]] = []
    seq = 0  # per-day event counter behind event ids e-YYYYMMDD-<seq>: unique across days and lines
    done_valid = done_bad = 0  # events (lines) of the day already written
    for part in range(files_per_day):
        writer = _PartWriter(folder / f"part-{part:05d}{suffix}", compress)
        n_chunks = -(-file_valid[part] // CHUNK_EVENTS)
        chunk_valid = _split(file_valid[part], [1] * n_chunks)
        chunk_bad = _split(file_bad[part], chunk_valid)
        chunk_blank = _split(file_blank[part], chunk_valid)
        try:
            for n, b, blank in zip(chunk_valid, chunk_bad, chunk_blank):
                # The chunk's share of the day's timeline, in proportion to its share of the day's events.
                t0 = day_start + done_valid * DAY_MS // n_valid
                t1 = day_start + (done_valid + n) * DAY_MS // n_valid
                lines, ts = _valid_lines(world, rng, n, t0, t1, seq, day_key, in_group_prob)
                seq += n
                stride = 1 if verify_all else VERIFY_EVERY
                for k in range(0, n, stride):
                    _check(lines[k], None, day)
                # Bad and blank lines go right after a random valid "anchor" line of the chunk, which a
                # duplicate repeats (so the original always comes first in the file as well).
                inserts: List[str] = []
                anchors = rng.integers(0, max(n, 1), b + blank)
                for j, code in zip(anchors[:b].tolist(), reasons[done_bad : done_bad + b].tolist()):
                    reason = REASONS[code]
                    line = bad_lines.make(reason, lines[j], ts[j], f"e-{day_key}-{seq}")
                    seq += 1
                    if reason == ev.DUPLICATE_EVENT_ID:
                        _check_duplicate(line, lines[j], day)
                    else:
                        _check(line, reason, day)
                    inserts.append(line)
                done_bad += b
                inserts += [BLANK_LINES[i] for i in rng.integers(0, len(BLANK_LINES), blank).tolist()]
                out: List[str] = []
                start = 0
                for index in np.argsort(anchors, kind="stable").tolist():
                    stop = int(anchors[index]) + 1
                    out += lines[start:stop]
                    out.append(inserts[index])
                    start = max(start, stop)
                out += lines[start:]
                writer.write(out, blank)
                done_valid += n
        finally:
            size = writer.close()  # also on errors: no open file or thread left behind
        files.append(
            {
                "path": f"{folder.name}/{writer.path.name}",
                "lines": writer.lines,
                "blank_lines": writer.blank_lines,
                "bytes": size,
            }
        )
    return {
        "lines": n_valid + n_bad,
        "blank_lines": n_blank,
        "expected_accepted": n_valid,
        "expected_rejected_by_reason": {r: int(c) for r, c in zip(REASONS, per_reason)},
        "files": files,
    }


def _as_date(value: Union[str, dt.date]) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def generate(
    output_dir: Union[str, Path],
    *,
    events: int = 100_000,
    days: int = 3,
    end_date: Union[str, dt.date] = "2024-01-31",
    users: int = 2000,
    items: int = 1000,
    groups: int = 8,
    in_group_prob: float = 0.85,
    zipf: float = 1.1,
    malformed_ratio: float = 0.02,
    blank_ratio: float = 0.002,
    seed: int = 42,
    gzip_output: bool = False,
    files_per_day: int = 1,
    verify_all: bool = False,
    quiet: bool = False,
) -> Dict[str, Any]:
    """Generate the data set into ``output_dir`` (replaced as a whole) and return its manifest.

    ``events`` valid events are spread evenly over the ``days`` UTC days ending on ``end_date``.
    ``verify_all`` re-parses every valid line with parse_line (slower; bad lines are always checked).
    """
    end = _as_date(end_date)
    checks = (
        (events >= 0, "events must be >= 0"),
        (days >= 1, "days must be >= 1"),
        (users >= 1, "users must be >= 1"),
        (1 <= groups <= items, "groups must be in [1, items]"),
        (0.0 <= in_group_prob <= 1.0, "in_group_prob must be in [0, 1]"),
        (zipf >= 0.0, "zipf must be >= 0"),
        (0.0 <= malformed_ratio < 1.0, "malformed_ratio must be in [0, 1)"),
        (blank_ratio >= 0.0, "blank_ratio must be >= 0"),
        (seed >= 0, "seed must be >= 0"),
        (files_per_day >= 1, "files_per_day must be >= 1"),
        (events <= days * DAY_MS, "at most one event per millisecond"),
    )
    for ok, message in checks:
        if not ok:
            raise ValueError(message)

    started = time.perf_counter()
    parameters = {
        "events": events,
        "days": days,
        "end_date": end.isoformat(),
        "users": users,
        "items": items,
        "groups": groups,
        "in_group_prob": in_group_prob,
        "zipf": zipf,
        "malformed_ratio": malformed_ratio,
        "blank_ratio": blank_ratio,
        "seed": seed,
        "gzip": gzip_output,
        "files_per_day": files_per_day,
    }
    world = build_world(seed, users, items, groups, zipf)
    dates = [end - dt.timedelta(days=days - 1 - i) for i in range(days)]
    day_entries: Dict[str, Dict[str, Any]] = {}
    with staged_output(output_dir) as stage:
        for day, n_valid in zip(dates, _split(events, [1] * days)):
            day_entries[day.isoformat()] = _write_day(
                world,
                day,
                n_valid,
                stage,
                seed=seed,
                in_group_prob=in_group_prob,
                malformed_ratio=malformed_ratio,
                blank_ratio=blank_ratio,
                compress=gzip_output,
                files_per_day=files_per_day,
                verify_all=verify_all,
            )
        totals = {
            "lines": sum(d["lines"] for d in day_entries.values()),
            "blank_lines": sum(d["blank_lines"] for d in day_entries.values()),
            "expected_accepted": sum(d["expected_accepted"] for d in day_entries.values()),
            "expected_rejected_by_reason": {
                r: sum(d["expected_rejected_by_reason"][r] for d in day_entries.values()) for r in REASONS
            },
            "bytes": sum(f["bytes"] for d in day_entries.values() for f in d["files"]),
        }
        manifest = {
            "generator": "tools.datagen.clickstream",
            "format_version": FORMAT_VERSION,
            "seed": seed,
            "parameters": parameters,
            "chunk_events": CHUNK_EVENTS,
            "first_day": dates[0].isoformat(),
            "last_day": dates[-1].isoformat(),
            "dedup_rule": DEDUP_RULE,
            "invariant": "lines = expected_accepted + sum(expected_rejected_by_reason); blanks not counted",
            "days": day_entries,
            "total": totals,
        }
        (stage / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    seconds = time.perf_counter() - started
    if not quiet:
        rejected = sum(totals["expected_rejected_by_reason"].values())
        print(
            f"clickstream: events={events} lines={totals['lines']} rejected={rejected} "
            f"blank={totals['blank_lines']} days={days} seconds={seconds:.2f} "
            f"events_per_s={events / max(seconds, 1e-9):.0f} bytes={totals['bytes']} -> {output_dir}"
        )
    return manifest


def _nonneg_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _pos_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.datagen.clickstream",
        description=__doc__.split("\n\n")[0]
        + " Writes <output>/dt=YYYY-MM-DD/part-NNNNN.jsonl[.gz] and <output>/_manifest.json "
        "(replacing <output>).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--output", required=True, type=Path, help="output folder (replaced as a whole)")
    add("--events", type=_nonneg_int, default=100_000, help="valid events (= expected accepted)")
    add("--days", type=_pos_int, default=3, help="number of UTC days, ending on --end-date")
    add("--end-date", type=_date, default=dt.date(2024, 1, 31), help="last day (YYYY-MM-DD)")
    add("--users", type=_pos_int, default=2000, help="number of users")
    add("--items", type=_pos_int, default=1000, help="number of items")
    add("--groups", type=_pos_int, default=8, help="latent taste groups (each owns a slice of items)")
    add("--in-group-prob", type=_ratio, default=0.85, help="probability an event is in the user's group")
    add("--zipf", type=float, default=1.1, help="Zipf exponent of item popularity")
    add("--malformed-ratio", type=_ratio, default=0.02, help="share of non-blank lines that are bad")
    add("--blank-ratio", type=float, default=0.002, help="blank lines per non-blank line")
    add("--seed", type=_nonneg_int, default=42, help="random seed")
    add("--gzip", action="store_true", help="write .jsonl.gz (deterministic gzip header)")
    add("--files-per-day", type=_pos_int, default=1, help="part files per day folder")
    add("--verify-all", action="store_true", help="re-parse every line while generating (slower)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        generate(
            args.output,
            events=args.events,
            days=args.days,
            end_date=args.end_date,
            users=args.users,
            items=args.items,
            groups=args.groups,
            in_group_prob=args.in_group_prob,
            zipf=args.zipf,
            malformed_ratio=args.malformed_ratio,
            blank_ratio=args.blank_ratio,
            seed=args.seed,
            gzip_output=args.gzip,
            files_per_day=args.files_per_day,
            verify_all=args.verify_all,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
