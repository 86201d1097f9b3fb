"""The demo dataset builder: deterministic, sized as asked, and its recorded noise is true."""

from __future__ import annotations

import collections
import dataclasses
import doctest
import json
import statistics
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from curation.sample_data import SampleManifest, build_sample

FIELDS = ["id", "text", "source", "noise", "noise_of"]
# Common English function words that are not also frequent words of the other languages used.
ENGLISH_STOP_WORDS = frozenset(
    "the of and to is that it for with this be are if by from not which when will should can "
    "has have was were been".split()
)
BOILERPLATE_MARKERS = (
    "Skip to main content",
    "Home | Docs | Blog",
    "Sign in | Register",
    "Search this site",
    "You are here: Home",
    "We use cookies",
    "Accept all cookies",
    "Reject non-essential cookies",
    "Was this page helpful?",
    "Share this page on Twitter",
    "Share on Facebook",
    "Related posts:",
    "Leave a comment",
    "Click here to subscribe",
    "Follow us on Instagram",
    "Back to top",
    "All rights reserved",
    "Privacy Policy | Terms of Use",
    "Powered by WordPress",
)


@dataclass(frozen=True)
class Sample:
    path: Path
    manifest: SampleManifest
    records: list[dict[str, Any]]

    @property
    def by_id(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.records}

    def texts(self, ids: list[str]) -> list[str]:
        by_id = self.by_id
        return [by_id[i]["text"] for i in ids]


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def normalized(text: str) -> str:
    return " ".join(text.lower().split())


def five_grams(text: str) -> set[tuple[str, ...]]:
    words = text.lower().split()
    if len(words) < 5:
        return {tuple(words)}
    return {tuple(words[i : i + 5]) for i in range(len(words) - 4)}


def jaccard(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    return len(a & b) / len(a | b)


def stop_word_share(text: str) -> float:
    words = [w.strip(".,;:!?()[]\"'«»„“”").lower() for w in text.split()]
    return sum(1 for w in words if w in ENGLISH_STOP_WORDS) / len(words)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    path = tmp_path_factory.mktemp("sample") / "sample.jsonl"
    manifest = build_sample(path)
    return Sample(path, manifest, read(path))


def test_same_seed_builds_byte_identical_files(sample: Sample, tmp_path: Path) -> None:
    again = tmp_path / "again.jsonl"
    build_sample(again, seed=0)
    assert again.read_bytes() == sample.path.read_bytes()
    manifest = sample.path.with_suffix(".manifest.json")
    assert again.with_suffix(".manifest.json").read_bytes() == manifest.read_bytes()


def test_another_seed_gives_another_sample(tmp_path: Path) -> None:
    build_sample(tmp_path / "a.jsonl", seed=1, size=300)
    build_sample(tmp_path / "b.jsonl", seed=2, size=300)
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "b.jsonl").read_bytes()


def test_default_build_holds_three_thousand_documents(sample: Sample) -> None:
    assert len(sample.records) == 3000
    assert sample.manifest.size == 3000


def test_size_argument_sets_the_number_of_documents(tmp_path: Path) -> None:
    manifest = build_sample(tmp_path / "small.jsonl", size=257)
    assert len(read(tmp_path / "small.jsonl")) == 257
    assert manifest.size == 257


def test_small_sample_still_holds_every_kind_of_noise(tmp_path: Path) -> None:
    manifest = build_sample(tmp_path / "small.jsonl", size=100)
    kinds = {tag.split(":")[0] for tag in manifest.counts}
    assert kinds == {
        "boilerplate",
        "code",
        "ellipsis",
        "exact_duplicate",
        "list",
        "long",
        "markup",
        "near_duplicate",
        "normalized_duplicate",
        "other_language",
        "script",
        "short",
        "symbol",
        "unicode",
    }


def test_non_positive_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        build_sample(tmp_path / "x.jsonl", size=0)


def test_size_beyond_the_offline_corpus_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="use size <="):
        build_sample(tmp_path / "x.jsonl", size=100_000)


def test_ids_are_unique_and_numbered_in_file_order(sample: Sample) -> None:
    ids = [r["id"] for r in sample.records]
    assert ids == [f"doc-{n:05d}" for n in range(1, len(ids) + 1)]


def test_every_line_is_a_json_object_with_a_non_empty_text(sample: Sample) -> None:
    raw = sample.path.read_text(encoding="utf-8")
    assert raw.endswith("\n")
    lines = raw[:-1].split("\n")
    # Lines must survive readers that also split on U+2028, U+0085 and friends.
    assert len(raw.splitlines()) == len(lines)
    ids = {json.loads(line)["id"] for line in lines}
    for line in lines:
        record = json.loads(line)
        assert list(record) == FIELDS
        assert isinstance(record["text"], str) and record["text"].strip()
        assert "\x00" not in record["text"]
        assert isinstance(record["source"], str) and record["source"]
        assert record["noise"] == sorted(record["noise"])
        assert all(isinstance(tag, str) for tag in record["noise"])
        assert record["noise_of"] is None or record["noise_of"] in ids


def test_manifest_counts_match_the_noise_tags_in_the_file(sample: Sample) -> None:
    tags = collections.Counter(tag for r in sample.records for tag in r["noise"])
    assert sample.manifest.counts == dict(tags)


def test_manifest_id_lists_match_the_noise_tags_in_the_file(sample: Sample) -> None:
    def tagged(prefix: str) -> list[str]:
        return sorted(
            r["id"] for r in sample.records if any(t.startswith(prefix) for t in r["noise"])
        )

    m = sample.manifest
    assert m.boilerplate_ids == tagged("boilerplate")
    assert m.markup_ids == tagged("markup")
    assert m.script_ids == tagged("script")
    assert set(m.script_ids) <= set(m.markup_ids)
    assert m.short_ids == tagged("short")
    assert m.long_ids == tagged("long")
    assert m.list_ids == tagged("list")
    assert m.symbol_ids == tagged("symbol")
    assert m.ellipsis_ids == tagged("ellipsis")
    assert m.code_ids == tagged("code")
    assert m.unicode_ids == tagged("unicode")
    assert m.other_language_ids == tagged("other_language:")
    assert [c for c, _ in m.exact_duplicates] == tagged("exact_duplicate")
    assert [c for c, _ in m.normalized_duplicates] == tagged("normalized_duplicate")
    assert [c for c, _, _ in m.near_duplicates] == tagged("near_duplicate")
    assert m.clean_ids == sorted(r["id"] for r in sample.records if not r["noise"])


def test_noise_shares_are_close_to_the_planned_rates(sample: Sample) -> None:
    counts = sample.manifest.counts
    languages = sum(n for tag, n in counts.items() if tag.startswith("other_language:"))
    assert counts["exact_duplicate"] + counts["normalized_duplicate"] == 90
    assert counts["near_duplicate"] == 150
    assert counts["boilerplate"] == 150
    assert counts["markup"] == 90 and counts["script"] == 30
    assert counts["short"] == 90
    assert counts["long"] == 30
    assert 90 <= languages <= 150
    assert len({tag for tag in counts if tag.startswith("other_language:")}) >= 3
    assert len(sample.manifest.clean_ids) >= 2000


def test_manifest_file_matches_the_returned_manifest(sample: Sample) -> None:
    written = json.loads(sample.path.with_suffix(".manifest.json").read_text(encoding="utf-8"))
    returned = json.loads(json.dumps(dataclasses.asdict(sample.manifest)))
    assert written == returned


def test_exact_duplicates_are_verbatim_copies(sample: Sample) -> None:
    by_id = sample.by_id
    assert sample.manifest.exact_duplicates
    for copy, original in sample.manifest.exact_duplicates:
        assert by_id[copy]["text"] == by_id[original]["text"]
        assert by_id[copy]["noise_of"] == original
        assert by_id[original]["noise"] == []
    originals = collections.Counter(o for _, o in sample.manifest.exact_duplicates)
    assert max(originals.values()) >= 2


def test_normalized_duplicates_differ_only_in_case_or_whitespace(sample: Sample) -> None:
    by_id = sample.by_id
    assert sample.manifest.normalized_duplicates
    for copy, original in sample.manifest.normalized_duplicates:
        a, b = by_id[copy]["text"], by_id[original]["text"]
        assert a != b
        assert normalized(a) == normalized(b)
        assert by_id[copy]["noise_of"] == original


def test_near_duplicates_have_their_recorded_jaccard_within_range(sample: Sample) -> None:
    by_id = sample.by_id
    scores = []
    for copy, original, recorded in sample.manifest.near_duplicates:
        assert by_id[copy]["noise_of"] == original
        actual = jaccard(five_grams(by_id[copy]["text"]), five_grams(by_id[original]["text"]))
        assert actual == pytest.approx(recorded, abs=1e-6)
        assert 0.5 <= actual <= 0.95
        scores.append(actual)
    assert sum(s > 0.8 for s in scores) >= 10
    assert sum(s < 0.65 for s in scores) >= 10


def test_every_copy_comes_after_its_original(sample: Sample) -> None:
    position = {r["id"]: n for n, r in enumerate(sample.records)}
    for r in sample.records:
        if r["noise_of"] is not None:
            assert position[r["noise_of"]] < position[r["id"]]


def test_no_duplicates_beyond_the_recorded_ones(sample: Sample) -> None:
    """Exact, normalized and near (5-gram Jaccard >= 0.5) matches are all in the manifest."""
    records = sample.records
    root = {r["id"]: r["noise_of"] or r["id"] for r in records}
    seen: dict[str, str] = {}
    for r in records:
        key = normalized(r["text"])
        if key in seen and "near_duplicate" not in r["noise"]:
            assert root[seen[key]] == root[r["id"]], (seen[key], r["id"])
        seen.setdefault(key, r["id"])

    long_ids = set(sample.manifest.long_ids)
    grams = {r["id"]: five_grams(r["text"]) for r in records if r["id"] not in long_ids}
    postings: dict[tuple[str, ...], list[str]] = collections.defaultdict(list)
    shared: collections.Counter[tuple[str, str]] = collections.Counter()
    for doc_id, doc_grams in grams.items():
        for gram in doc_grams:
            for other in postings[gram]:
                shared[(other, doc_id)] += 1
            postings[gram].append(doc_id)
    for (a, b), common in shared.items():
        similarity = common / (len(grams[a]) + len(grams[b]) - common)
        if similarity >= 0.5:
            assert root[a] == root[b], (a, b, similarity)

    longs = [five_grams(t) for t in sample.texts(sorted(long_ids))]
    for i, first in enumerate(longs):
        for second in longs[i + 1 :]:
            assert jaccard(first, second) < 0.5


def test_other_language_documents_have_few_english_stop_words(sample: Sample) -> None:
    texts = sample.texts(sample.manifest.other_language_ids)
    assert texts
    for text in texts:
        assert 40 <= len(text.split()) <= 200
        assert stop_word_share(text) < 0.15


def test_clean_documents_read_as_english(sample: Sample) -> None:
    shares = [stop_word_share(t) for t in sample.texts(sample.manifest.clean_ids)]
    assert min(shares) >= 0.05
    assert statistics.median(shares) >= 0.2


def test_clean_documents_have_at_least_fifty_words(sample: Sample) -> None:
    assert min(len(t.split()) for t in sample.texts(sample.manifest.clean_ids)) >= 50


def test_script_tags_appear_only_in_script_documents(sample: Sample) -> None:
    scripts = set(sample.manifest.script_ids)
    assert scripts
    for r in sample.records:
        assert ("<script" in r["text"].lower()) == (r["id"] in scripts), r["id"]


def test_markup_documents_are_html(sample: Sample) -> None:
    for text in sample.texts(sample.manifest.markup_ids):
        assert text.startswith("<div") and "</p>" in text and text.endswith("</div>")


def test_boilerplate_appears_only_in_boilerplate_documents(sample: Sample) -> None:
    tagged = set(sample.manifest.boilerplate_ids)
    for r in sample.records:
        found = any(marker in r["text"] for marker in BOILERPLATE_MARKERS)
        if r["id"] in tagged:
            assert found, r["id"]
        elif r["id"] not in sample.manifest.long_ids:
            assert not found, r["id"]


def test_long_documents_exceed_their_thresholds(sample: Sample) -> None:
    texts = sample.texts(sample.manifest.long_ids)
    assert texts
    assert all(20_000 <= len(t) <= 200_000 for t in texts)
    huge = [t for t in texts if len(t) > 100_000]
    assert any(max(len(line) for line in t.split("\n")) > 50_000 for t in huge)
    others = set(sample.manifest.long_ids)
    assert all(len(r["text"]) < 20_000 for r in sample.records if r["id"] not in others)


def test_short_documents_have_one_to_five_words(sample: Sample) -> None:
    texts = sample.texts(sample.manifest.short_ids)
    assert texts
    assert all(1 <= len(t.split()) <= 5 for t in texts)
    assert len({normalized(t) for t in texts}) == len(texts)


def test_list_documents_are_mostly_bullet_lines(sample: Sample) -> None:
    for text in sample.texts(sample.manifest.list_ids):
        lines = text.split("\n")
        bullets = sum(line.startswith(("• ", "- ", "* ")) for line in lines)
        assert bullets >= 0.5 * len(lines)


def test_ellipsis_documents_mostly_end_lines_with_an_ellipsis(sample: Sample) -> None:
    for text in sample.texts(sample.manifest.ellipsis_ids):
        lines = text.split("\n")
        assert sum(line.endswith(("...", "…")) for line in lines) >= 0.8 * len(lines)


def test_symbol_documents_are_symbol_heavy(sample: Sample) -> None:
    for text in sample.texts(sample.manifest.symbol_ids):
        symbols = text.count("#") + text.count("...") + text.count("…")
        assert symbols >= 0.1 * len(text.split())


def test_code_documents_are_only_doctest_examples(sample: Sample) -> None:
    for text in sample.texts(sample.manifest.code_ids):
        lines = [line for line in text.split("\n") if line.strip()]
        assert lines[0].startswith(">>> ")
        examples = doctest.DocTestParser().get_examples(text)
        example_lines = sum(e.source.count("\n") + e.want.count("\n") for e in examples)
        assert example_lines == len(lines)


def test_unicode_documents_hold_emoji_joiners_rtl_and_combining_marks(sample: Sample) -> None:
    for text in sample.texts(sample.manifest.unicode_ids):
        assert "\u200d" in text or "\U0001f1eb\U0001f1f7" in text
        assert any(unicodedata.bidirectional(c) in ("R", "AL") for c in text)
        assert any(unicodedata.combining(c) for c in text)
        assert any(ord(c) >= 0x1F000 or 0x2600 <= ord(c) <= 0x27BF for c in text)


def test_no_lorem_ipsum_anywhere(sample: Sample) -> None:
    assert "lorem" not in sample.path.read_text(encoding="utf-8").lower()
