"""benchmarks.tables: Markdown tables and number formats, exact strings."""

from __future__ import annotations

import pytest

from benchmarks.tables import (
    fmt_count,
    fmt_load,
    fmt_metric,
    fmt_mib,
    fmt_num,
    fmt_rate,
    fmt_seconds,
    markdown_table,
)

pytestmark = pytest.mark.unit


def test_markdown_table_aligns_and_escapes():
    table = markdown_table(["job", "seconds"], [["parse|logs", 1.5], ["train", 12]])
    assert table == ("| job | seconds |\n| :--- | ---: |\n| parse\\|logs | 1.5 |\n| train | 12 |")


def test_markdown_table_with_explicit_alignment():
    assert markdown_table(["a", "b"], [], "rl") == "| a | b |\n| ---: | :--- |"


def test_markdown_table_rejects_ragged_rows():
    with pytest.raises(ValueError):
        markdown_table(["a", "b"], [["only one"]])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0 s"),
        (0.0261, "0.026 s"),
        (12.34, "12.3 s"),
        (256.8, "257 s"),
        (1450.2, "1,450 s"),
        (None, "n/a"),
    ],
)
def test_fmt_seconds(seconds, text):
    assert fmt_seconds(seconds) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (10_000_000, "10M"),
        (1_234_567, "1.23M"),
        (1_000_000, "1M"),
        (250_000, "250k"),
        (98_396, "98.4k"),
        (943, "943"),
    ],
)
def test_fmt_count(n, text):
    assert fmt_count(n) == text


def test_other_formats():
    assert fmt_rate(38910.2) == "38.9k/s"
    assert fmt_rate(1.5e6) == "1.50M/s"
    assert fmt_rate(512) == "512/s"
    assert fmt_mib(2476.4) == "2,476 MiB"
    assert fmt_num(1234.56) == "1,234.6"
    assert fmt_num(float("nan")) == "n/a"
    assert fmt_load([4.62, 4.1, 3.0], [5.96, 4.2, 3.1]) == "4.62 → 5.96"
    assert fmt_metric(0.441997) == "0.442"
    assert fmt_metric(None) == "n/a"
