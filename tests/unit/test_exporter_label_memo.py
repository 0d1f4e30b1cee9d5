"""Label cleaning is remembered for two scrapes only: churned containers' names cannot pile up in the exporter."""

from __future__ import annotations

from ctop.exporters import labels


def test_values_not_seen_for_two_scrapes_are_forgotten() -> None:
    labels.next_scrape()
    labels.next_scrape()
    for scrape in range(50):
        labels.next_scrape()
        for i in range(100):  # 100 live containers, all replaced every scrape
            assert labels.clean(f"/docker/{scrape:04d}{i:060d}") == f"/docker/{scrape:04d}{i:060d}"
        assert labels.clean("/") == "/"
    assert len(labels._memo.now) + len(labels._memo.before) <= 2 * 101


def test_remembered_results_are_the_cleaned_ones() -> None:
    labels.next_scrape()
    hostile = "evil\x1b[2Jname\x9b"
    first = labels.clean(hostile)
    assert "\x1b" not in first and "\x9b" not in first and first == labels.clean_value(hostile)
    labels.next_scrape()
    assert labels.clean(hostile) == first  # from the previous scrape's memo
    assert labels.clean(1) == "1" and labels.clean(1.0) == "1.0"  # equal but different types stay apart
    assert labels.clean(["unhashable"]) == labels.clean_value(["unhashable"])
