"""The synthetic clickstream: its manifest must state exactly what the parse_logs contract yields."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

from spark_jobs.common.events import DUPLICATE_EVENT_ID, REJECT_REASONS, is_blank_bytes, parse_raw
from tools.datagen import clickstream

pytestmark = pytest.mark.unit

SMALL = {"events": 5000, "days": 3, "end_date": "2024-01-31", "users": 300, "items": 200, "seed": 7}


def _read(path: Path) -> str:
    data = path.read_bytes()
    # surrogateescape: bytes that are not UTF-8 (generated invalid_utf8 lines) survive the round trip.
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("utf-8", "surrogateescape")


def is_blank(line: str) -> bool:
    return is_blank_bytes(line.encode("utf-8", "surrogateescape"))


def parse_line(line: str):
    """parse_logs' verdict on a line read back from a generated file."""
    return parse_raw(line.encode("utf-8", "surrogateescape")).parsed


def _tally(out: Path) -> Dict[str, Dict[str, Any]]:
    """Independent re-count of every day folder with parse_line plus parse_logs' duplicate rule."""
    result = {}
    for folder in sorted(out.glob("dt=*")):
        day = folder.name[3:]
        blank = 0
        reasons: Counter = Counter()
        by_id = defaultdict(list)  # event_id -> [(event_ts_us, raw line)] of valid lines
        for part in sorted(folder.glob("part-*")):
            text = _read(part)
            if not text:  # a day (or part) without events
                continue
            assert text.endswith("\n")
            for line in text[:-1].split("\n"):
                if is_blank(line):
                    blank += 1
                    continue
                parsed = parse_line(line)
                if parsed.reason is not None:
                    reasons[parsed.reason] += 1
                    continue
                utc_day = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=parsed.event_ts_us)
                assert utc_day.date().isoformat() == day, line
                by_id[parsed.event_id].append((parsed.event_ts_us, line))
        # parse_logs keeps the smallest (event timestamp, raw line) of lines sharing an event_id.
        for candidates in by_id.values():
            reasons[DUPLICATE_EVENT_ID] += len(candidates) - 1
        result[day] = {
            "lines": len(by_id) + sum(reasons.values()),
            "blank_lines": blank,
            "expected_accepted": len(by_id),
            "expected_rejected_by_reason": {r: reasons.get(r, 0) for r in REJECT_REASONS},
        }
    return result


def _without_files(manifest: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {day: {k: v for k, v in entry.items() if k != "files"} for day, entry in manifest["days"].items()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("clickstream") / "raw"
    manifest = clickstream.generate(out, quiet=True, **SMALL)
    return out, manifest


def test_manifest_matches_an_independent_parse(small):
    out, manifest = small
    assert _tally(out) == _without_files(manifest)
    assert json.loads((out / "_manifest.json").read_text()) == manifest
    assert sorted(manifest["days"]) == ["2024-01-29", "2024-01-30", "2024-01-31"]


def test_counts_add_up_and_every_reason_is_present(small):
    _, manifest = small
    total = manifest["total"]
    assert total["expected_accepted"] == SMALL["events"]
    assert total["lines"] == total["expected_accepted"] + sum(total["expected_rejected_by_reason"].values())
    for entry in manifest["days"].values():
        rejected = entry["expected_rejected_by_reason"]
        assert entry["lines"] == entry["expected_accepted"] + sum(rejected.values())
        assert all(rejected[r] > 0 for r in REJECT_REASONS), rejected  # every reason, every day
        assert entry["lines"] == sum(f["lines"] for f in entry["files"])
    bad_share = sum(total["expected_rejected_by_reason"].values()) / total["lines"]
    assert bad_share == pytest.approx(0.02, abs=0.002)
    assert total["blank_lines"] > 0


def test_field_forms_exercise_normalisation(small):
    out, _ = small
    records = []
    for part in sorted(out.glob("dt=*/part-*")):
        for line in _read(part).splitlines():
            if not is_blank(line) and parse_line(line).reason is None:
                records.append(json.loads(line))
    ts_forms = Counter()
    for rec in records:
        ts = rec["ts"]
        ts_forms["epoch_ms" if isinstance(ts, int) else "Z" if ts.endswith("Z") else "offset"] += 1
    assert min(ts_forms.values()) > 0.1 * len(records), ts_forms
    assert any(isinstance(r["user_id"], int) for r in records)
    assert any(isinstance(r["item_id"], int) for r in records)
    assert any("session_id" not in r for r in records)
    assert any(
        set(r) - {"event_id", "user_id", "item_id", "event_type", "ts", "session_id", "value"}
        for r in records
    )
    types = Counter(r["event_type"] for r in records)
    assert set(types) == {"view", "click", "add_to_cart", "purchase", "rating"}
    assert types["view"] / len(records) == pytest.approx(0.70, abs=0.03)
    assert all(0.5 <= r["value"] <= 5 for r in records if r["event_type"] == "rating")
    # An int id and its string form must name the same entity: every numeric-looking id string has an int
    # twin or none at all, never a different prefix form ("u17" is another user than 17).
    for field, prefix in (("user_id", "u"), ("item_id", "i")):
        ids = {str(r[field]) for r in records}
        assert all(i.isdigit() or i.startswith(prefix) for i in ids)


def test_in_group_share_gives_collaborative_signal(small):
    """Most events hit the user's latent group slice; a popularity ranking cannot know that."""
    out, manifest = small
    params = manifest["parameters"]
    world = clickstream.build_world(
        params["seed"], params["users"], params["items"], params["groups"], params["zipf"]
    )
    slice_of = np.empty(params["items"], dtype=np.int64)
    for g, members in enumerate(world.slice_items):
        slice_of[members] = g
    hits = total = 0
    for part in sorted(out.glob("dt=*/part-*")):
        for line in _read(part).splitlines():
            parsed = None if is_blank(line) else parse_line(line)
            if parsed is None or parsed.reason is not None:
                continue
            user = int(parsed.user_id.lstrip("u")) - 1
            item = int(parsed.item_id.lstrip("i")) - 1
            hits += slice_of[item] == world.user_group[user]
            total += 1
    # in_group_prob plus the out-of-group draws that land in the own slice by chance.
    assert hits / total > params["in_group_prob"] - 0.03


def test_deterministic_and_gzip_has_the_same_content(tmp_path, small):
    out, manifest = small
    again = clickstream.generate(tmp_path / "again", quiet=True, **SMALL)
    assert again == manifest
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file()
    )
    for rel in files:
        assert (out / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes(), rel

    zipped = clickstream.generate(tmp_path / "gz", gzip_output=True, quiet=True, **SMALL)
    assert _without_files(zipped) == _without_files(manifest)
    for day in manifest["days"]:
        plain = (out / f"dt={day}" / "part-00000.jsonl").read_bytes()
        assert gzip.decompress((tmp_path / "gz" / f"dt={day}" / "part-00000.jsonl.gz").read_bytes()) == plain
    zipped_twice = clickstream.generate(tmp_path / "gz2", gzip_output=True, quiet=True, **SMALL)
    assert zipped_twice == zipped  # includes every file's size; the gzip header carries no mtime or name
    first = (tmp_path / "gz" / "dt=2024-01-31" / "part-00000.jsonl.gz").read_bytes()
    assert first == (tmp_path / "gz2" / "dt=2024-01-31" / "part-00000.jsonl.gz").read_bytes()


def test_several_files_per_day_and_a_seed_change(tmp_path):
    params = dict(SMALL, events=3000, days=2, seed=11)
    manifest = clickstream.generate(
        tmp_path / "multi", files_per_day=3, gzip_output=True, quiet=True, **params
    )
    assert _tally(tmp_path / "multi") == _without_files(manifest)
    for day, entry in manifest["days"].items():
        assert [f["path"] for f in entry["files"]] == [f"dt={day}/part-{k:05d}.jsonl.gz" for k in range(3)]
    other = clickstream.generate(tmp_path / "other", quiet=True, **dict(params, seed=12))
    assert other["days"] != manifest["days"]


def test_rerun_replaces_the_folder_and_foreign_folders_are_kept(tmp_path):
    out = tmp_path / "raw"
    clickstream.generate(out, quiet=True, **dict(SMALL, events=500))
    clickstream.generate(out, quiet=True, **dict(SMALL, events=500, days=1, end_date="2024-02-05"))
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", "dt=2024-02-05"]

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="refusing"):
        clickstream.generate(foreign, quiet=True, **dict(SMALL, events=10))
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_edge_sizes(tmp_path):
    # Fewer events than days, and no bad lines: empty days still get a folder and a (empty) part file.
    manifest = clickstream.generate(tmp_path / "tiny", events=2, days=3, malformed_ratio=0.0, quiet=True)
    assert [e["expected_accepted"] for e in manifest["days"].values()] == [0, 1, 1]
    assert manifest["total"]["lines"] == 2
    assert _tally(tmp_path / "tiny") == _without_files(manifest)
    with pytest.raises(ValueError, match="groups"):
        clickstream.generate(tmp_path / "bad", events=10, items=4, groups=5, quiet=True)


def test_cli(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        clickstream.main(["--help"])
    assert exc.value.code == 0
    assert "--malformed-ratio" in capsys.readouterr().out
    assert (
        clickstream.main(["--output", str(tmp_path / "cli"), "--events", "300", "--days", "1", "--gzip"]) == 0
    )
    assert "clickstream: events=300" in capsys.readouterr().out
    assert (tmp_path / "cli" / "dt=2024-01-31" / "part-00000.jsonl.gz").is_file()
