"""How values read on a page: tones, relative times in both languages, event summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from juanie.domain.lifecycle import ALL_MACHINES
from juanie.web.format import absolute_time, relative_time, summarize_event_data, tone

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_every_lifecycle_state_has_a_deliberate_tone() -> None:
    unknown = sorted(state for machine in ALL_MACHINES for state in machine.states if tone(state) == "muted")
    # Only end states that mean "no longer in play" are muted; everything else carries a colour.
    assert set(unknown) <= {"archived", "deleted", "cancelled", "expired"}, unknown
    assert tone("failed") == "bad" and tone("active") == "ok" and tone("running") == "busy"
    assert tone(None) == "muted" and tone("something-new") == "muted"


def test_relative_time_in_english_and_chinese() -> None:
    assert relative_time(NOW - timedelta(minutes=3), NOW, "en") == "3 minutes ago"
    assert relative_time(NOW - timedelta(hours=2), NOW, "zh_CN") == "2小时前"
    assert relative_time(None, NOW, "en") == ""


def test_a_timestamp_slightly_in_the_future_still_reads_as_the_past() -> None:
    assert relative_time(NOW + timedelta(seconds=3), NOW, "en") == "1 second ago"


def test_naive_timestamps_are_taken_as_utc() -> None:
    assert absolute_time(datetime(2026, 3, 1, 9, 30), "en").endswith("UTC")
    assert "9:30" in absolute_time(datetime(2026, 3, 1, 9, 30), "en")


def test_event_summary_is_sorted_skips_empty_values_and_cuts_long_lines() -> None:
    assert summarize_event_data({"to": "active", "from": "creating", "reason": ""}) == "from=creating to=active"
    assert summarize_event_data({"envs": ["dev", "prod"], "spec": {"b": 1, "a": 2}}) == "envs=dev,prod spec={a,b}"
    long = summarize_event_data({"message": "x" * 500}, limit=40)
    assert len(long) == 40 and long.endswith("…")
    assert summarize_event_data(None) == ""
