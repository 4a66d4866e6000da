"""MovieLens-100K ratings as raw events (docs/contracts.md), fully offline but for pip.

The data ships inside the ``recbole==1.2.1`` wheel; it is fetched with ``pip download --no-deps`` into a
cache folder (skipped when the wheel is already there) and read with :mod:`zipfile`. recbole is never
installed (it would pull torch and ray). The data is not ours to commit: keep it under ``data/``.

Output (the folder is replaced as a whole on every run):
- ``<output>/dt=YYYY-MM-DD/part-00000.jsonl``: one rating event per line, one folder per UTC day, lines
  ordered by (ts, user_id, item_id)::

    {"event_id":"ml100k-196-242","user_id":"196","item_id":"242","event_type":"rating","ts":881250949000,"value":3.0}

- ``<output>/_manifest.json``: source, counts (ratings, users, items, days, first/last day, per day) and
  the expected parse_logs outcome (every line is checked with parse_line while converting).
- ``<output>/_items.jsonl`` (or ``--items-output PATH``): the movie catalogue, one
  ``{"item_id", "title", "release_year", "genres"}`` object per line. The leading underscore makes Spark
  and Hadoop skip it (like ``_manifest.json``) if the whole output folder is ever read as input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Union

from spark_jobs.common import events as ev
from tools.datagen import MANIFEST_NAME, staged_output

FORMAT_VERSION = 1
PACKAGE = "recbole==1.2.1"
WHEEL_NAME = "recbole-1.2.1-py3-none-any.whl"
INTER_PATH = "recbole/dataset_example/ml-100k/ml-100k.inter"
ITEM_PATH = "recbole/dataset_example/ml-100k/ml-100k.item"
ITEMS_NAME = "_items.jsonl"
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / "data" / "cache"
DAY_MS = 86_400_000


class Rating(NamedTuple):
    """One MovieLens rating: ids as strings, ``ts_ms`` in epoch milliseconds (UTC), ``value`` in stars."""

    user_id: str
    item_id: str
    value: float
    ts_ms: int


def fetch_wheel(cache_dir: Union[str, Path]) -> Path:
    """Path of the recbole wheel in ``cache_dir``, downloaded with pip (no install) if not there yet."""
    cache = Path(cache_dir)
    wheel = cache / WHEEL_NAME
    if wheel.is_file():
        if zipfile.is_zipfile(wheel):
            return wheel
        wheel.unlink()  # a partial download: fetch again
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":none:",
        "--disable-pip-version-check",
        PACKAGE,
        "-d",
        str(cache),
    ]
    subprocess.run(command, check=True)
    if not wheel.is_file():
        raise RuntimeError(f"pip download did not produce {wheel}")
    return wheel


def _columns(header: str, required: Sequence[str], source: str) -> Dict[str, int]:
    """Column positions by name for a RecBole atomic-file header (``name:type`` tab-separated)."""
    names = [column.split(":", 1)[0] for column in header.rstrip("\r\n").split("\t")]
    missing = [name for name in required if name not in names]
    if missing:
        raise ValueError(f"{source}: header {header.strip()!r} lacks {missing}")
    return {name: names.index(name) for name in names}


def read_ratings(text: str) -> List[Rating]:
    """Ratings from the text of ``ml-100k.inter`` (tab-separated, typed header, timestamps in seconds)."""
    lines = text.splitlines()
    col = _columns(lines[0], ("user_id", "item_id", "rating", "timestamp"), INTER_PATH)
    out = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            seconds = float(fields[col["timestamp"]])
            out.append(
                Rating(
                    user_id=fields[col["user_id"]].strip(),
                    item_id=fields[col["item_id"]].strip(),
                    value=float(fields[col["rating"]]),
                    ts_ms=round(seconds * 1000),
                )
            )
        except (IndexError, ValueError) as exc:
            raise ValueError(f"{INTER_PATH} line {number}: {line!r}: {exc}") from None
    return out


def read_items(text: str) -> List[Dict[str, Any]]:
    """The catalogue from ``ml-100k.item``: item_id, title, release_year (int or None), genres (list)."""
    lines = text.splitlines()
    col = _columns(lines[0], ("item_id", "movie_title"), ITEM_PATH)

    def field(fields: List[str], name: str) -> str:
        index = col.get(name)
        return fields[index].strip() if index is not None and index < len(fields) else ""

    out = []
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split("\t")
        year = field(fields, "release_year")
        out.append(
            {
                "item_id": field(fields, "item_id"),
                "title": field(fields, "movie_title"),
                "release_year": int(year) if year.isdigit() else None,
                # Genres are space-separated single tokens (Children's, Film-Noir, Sci-Fi).
                "genres": field(fields, "class").split(),
            }
        )
    return out


def _event_line(rating: Rating) -> str:
    return json.dumps(
        {
            "event_id": f"ml100k-{rating.user_id}-{rating.item_id}",
            "user_id": rating.user_id,
            "item_id": rating.item_id,
            "event_type": "rating",
            "ts": rating.ts_ms,
            "value": rating.value,
        },
        separators=(",", ":"),
    )


def _decode(data: bytes) -> str:
    # RecBole's copy is UTF-8; the original GroupLens files are Latin-1, so accept those too.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _write_jsonl(path: Path, records: List[Dict[str, Any]]) -> None:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records),
        encoding="utf-8",
    )


def convert(
    output_dir: Union[str, Path],
    cache_dir: Union[str, Path] = DEFAULT_CACHE,
    *,
    items_output: Optional[Union[str, Path]] = None,
) -> Dict[str, Any]:
    """Write MovieLens-100K as raw events into ``output_dir`` (replaced as a whole); return the manifest.

    ``items_output`` defaults to ``<output_dir>/_items.jsonl``.
    """
    wheel = fetch_wheel(cache_dir)
    with zipfile.ZipFile(wheel) as archive:
        ratings = read_ratings(_decode(archive.read(INTER_PATH)))
        catalogue = read_items(_decode(archive.read(ITEM_PATH)))
    if not ratings:
        raise ValueError(f"{wheel}: no ratings in {INTER_PATH}")
    ratings.sort(key=lambda r: (r.ts_ms, r.user_id, r.item_id))

    per_day: Dict[str, int] = {}
    rejected: Counter = Counter()
    seen_ids: set = set()
    accepted = 0
    with staged_output(output_dir) as stage:
        for day_number, group in itertools.groupby(ratings, key=lambda r: r.ts_ms // DAY_MS):
            day = (dt.date(1970, 1, 1) + dt.timedelta(days=day_number)).isoformat()
            lines = [_event_line(r) for r in group]
            # Check every line against the contract, so the manifest states the exact parse_logs outcome
            # (MovieLens-100K has one rating per user and item, hence no duplicate event ids).
            for line in lines:
                parsed = ev.parse_line(line)
                if parsed.reason is None and parsed.event_id in seen_ids:
                    rejected[ev.DUPLICATE_EVENT_ID] += 1
                elif parsed.reason is None:
                    seen_ids.add(parsed.event_id)
                    accepted += 1
                else:
                    rejected[parsed.reason] += 1
            folder = stage / f"dt={day}"
            folder.mkdir()
            (folder / "part-00000.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
            per_day[day] = len(lines)

        items_path = Path(items_output) if items_output is not None else None
        if items_path is None:
            _write_jsonl(stage / ITEMS_NAME, catalogue)
        else:
            items_path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{items_path.name}.", dir=items_path.parent)
            os.close(fd)
            _write_jsonl(Path(tmp), catalogue)
            os.replace(tmp, items_path)  # atomic: a rerun never leaves a half-written catalogue

        days = sorted(per_day)
        manifest = {
            "generator": "tools.datagen.movielens",
            "format_version": FORMAT_VERSION,
            "source": {
                "package": PACKAGE,
                "wheel": WHEEL_NAME,
                "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
                "ratings_file": INTER_PATH,
                "items_file": ITEM_PATH,
            },
            "ratings": len(ratings),
            "users": len({r.user_id for r in ratings}),
            "items": len({r.item_id for r in ratings}),
            "catalogue_items": len(catalogue),
            "days": len(days),
            "first_day": days[0],
            "last_day": days[-1],
            "lines": len(ratings),
            "blank_lines": 0,
            "expected_accepted": accepted,
            "expected_rejected_by_reason": {r: rejected.get(r, 0) for r in ev.REJECT_REASONS},
            "items_output": str(items_path) if items_path is not None else ITEMS_NAME,
            "ratings_per_day": per_day,
        }
        (stage / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.datagen.movielens",
        description="MovieLens-100K (from the recbole==1.2.1 wheel, fetched with pip download, never "
        "installed) as raw rating events: <output>/dt=YYYY-MM-DD/part-00000.jsonl, _manifest.json and "
        "the movie catalogue _items.jsonl. The output folder is replaced.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output", required=True, type=Path, help="output folder (replaced as a whole)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the wheel is kept")
    parser.add_argument(
        "--items-output",
        type=Path,
        default=None,
        help=f"movie catalogue as JSON lines (default: <output>/{ITEMS_NAME})",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        fetch_wheel(args.cache)
        fetched = time.perf_counter()
        manifest = convert(args.output, args.cache, items_output=args.items_output)
    except (ValueError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = time.perf_counter()
    print(
        f"movielens: ratings={manifest['ratings']} users={manifest['users']} items={manifest['items']} "
        f"days={manifest['days']} first_day={manifest['first_day']} last_day={manifest['last_day']} "
        f"fetch_s={fetched - started:.2f} convert_s={done - fetched:.2f} -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
