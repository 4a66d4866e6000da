"""MovieLens-100K conversion on a tiny fake recbole wheel (no download, no network)."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from spark_jobs.common.events import REJECT_REASONS, parse_line
from tools.datagen import movielens

pytestmark = pytest.mark.unit

INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "196\t242\t3\t881250949\n"
    "186\t302\t3.5\t891717742\n"
    "22\t377\t1\t878887116\n"
    "196\t51\t5\t881250950\n"
    "7\t1\t4\t864000000\n"  # exactly midnight UTC: the first second of 1997-05-19
    "8\t1\t2\t863999999\n"  # one second earlier: still 1997-05-18
)
ITEMS = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\n"
    "51\tLegends of the Fall\t1994\tDrama Romance War Western\n"
    "267\tunknown\t\tunknown\n"
)


def _fake_wheel(cache: Path, inter: str = INTER) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / movielens.WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(movielens.INTER_PATH, inter)
        archive.writestr(movielens.ITEM_PATH, ITEMS)
        archive.writestr("recbole/__init__.py", "")
    return wheel


@pytest.fixture
def no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected subprocess call: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)


def _read_lines(path: Path):
    return path.read_text(encoding="utf-8").splitlines()


def test_convert_exact_output(tmp_path, no_download):
    _fake_wheel(tmp_path / "cache")
    out = tmp_path / "ml"
    manifest = movielens.convert(out, tmp_path / "cache")

    days = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert days == ["dt=1997-05-18", "dt=1997-05-19", "dt=1997-11-07", "dt=1997-12-04", "dt=1998-04-04"]
    assert _read_lines(out / "dt=1997-12-04" / "part-00000.jsonl") == [
        '{"event_id":"ml100k-196-242","user_id":"196","item_id":"242","event_type":"rating",'
        '"ts":881250949000,"value":3.0}',
        '{"event_id":"ml100k-196-51","user_id":"196","item_id":"51","event_type":"rating",'
        '"ts":881250950000,"value":5.0}',
    ]
    assert _read_lines(out / "dt=1997-05-19" / "part-00000.jsonl") == [
        '{"event_id":"ml100k-7-1","user_id":"7","item_id":"1","event_type":"rating",'
        '"ts":864000000000,"value":4.0}'
    ]
    half = json.loads(_read_lines(out / "dt=1998-04-04" / "part-00000.jsonl")[0])
    assert half == {
        "event_id": "ml100k-186-302",
        "user_id": "186",
        "item_id": "302",
        "event_type": "rating",
        "ts": 891717742000,
        "value": 3.5,
    }
    # Every line is valid under the contract.
    for day in days:
        for line in _read_lines(out / day / "part-00000.jsonl"):
            assert parse_line(line).reason is None

    assert manifest["ratings"] == 6
    assert manifest["users"] == 5
    assert manifest["items"] == 5
    assert manifest["catalogue_items"] == 3
    assert manifest["days"] == 5
    assert (manifest["first_day"], manifest["last_day"]) == ("1997-05-18", "1998-04-04")
    assert manifest["expected_accepted"] == 6
    assert manifest["expected_rejected_by_reason"] == {r: 0 for r in REJECT_REASONS}
    assert manifest["ratings_per_day"] == {
        "1997-05-18": 1,
        "1997-05-19": 1,
        "1997-11-07": 1,
        "1997-12-04": 2,
        "1998-04-04": 1,
    }
    assert json.loads((out / "_manifest.json").read_text()) == manifest

    catalogue = [json.loads(line) for line in _read_lines(out / "_items.jsonl")]
    assert catalogue == [
        {
            "item_id": "1",
            "title": "Toy Story",
            "release_year": 1995,
            "genres": ["Animation", "Children's", "Comedy"],
        },
        {
            "item_id": "51",
            "title": "Legends of the Fall",
            "release_year": 1994,
            "genres": ["Drama", "Romance", "War", "Western"],
        },
        {"item_id": "267", "title": "unknown", "release_year": None, "genres": ["unknown"]},
    ]


def test_rerun_replaces_output_and_items_output_option(tmp_path, no_download):
    cache = tmp_path / "cache"
    _fake_wheel(cache)
    out = tmp_path / "ml"
    movielens.convert(out, cache)
    (out / "dt=2000-01-01").mkdir()  # a stale folder a rerun must not keep
    _fake_wheel(cache, inter="user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t1\t5\t0\n")
    items = tmp_path / "catalogue" / "items.jsonl"
    manifest = movielens.convert(out, cache, items_output=items)

    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", "dt=1970-01-01"]
    assert manifest["ratings"] == 1
    assert manifest["items_output"] == str(items)
    assert len(_read_lines(items)) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_refuses_to_replace_a_foreign_folder(tmp_path, no_download):
    _fake_wheel(tmp_path / "cache")
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing"):
        movielens.convert(out, tmp_path / "cache")
    assert (out / "notes.txt").read_text() == "keep me"


def test_fetch_wheel_downloads_once_with_pip(tmp_path, monkeypatch):
    calls = []

    def fake_pip(command, check):
        calls.append(command)
        _fake_wheel(Path(command[command.index("-d") + 1]))

    monkeypatch.setattr(subprocess, "run", fake_pip)
    cache = tmp_path / "cache"
    (cache).mkdir()
    (cache / movielens.WHEEL_NAME).write_bytes(b"partial download")  # not a zip: fetched again
    assert movielens.fetch_wheel(cache) == cache / movielens.WHEEL_NAME
    assert movielens.fetch_wheel(cache) == cache / movielens.WHEEL_NAME  # cached: no second download
    assert len(calls) == 1
    command = calls[0]
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "recbole==1.2.1" in command
    assert "install" not in command


def test_bad_header_is_a_clear_error(tmp_path, no_download):
    _fake_wheel(tmp_path / "cache", inter="user:token\titem:token\n1\t2\n")
    with pytest.raises(ValueError, match="lacks"):
        movielens.convert(tmp_path / "ml", tmp_path / "cache")
    assert not (tmp_path / "ml").exists()
