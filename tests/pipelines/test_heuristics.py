from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
from datatrove.data import Document as DatatroveDocument
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.base_filter import get_filter_result
from datatrove.pipeline.filters.gopher_repetition_filter import (
    find_all_duplicate,
    find_top_duplicate,
    get_n_grams,
)
from datatrove.utils.word_tokenizers import SpaCyTokenizer, load_word_tokenizer

from pipelines.steps.base import Document, Step, StepParamError
from pipelines.steps.heuristics import (
    DUP_N_GRAMS,
    TOP_N_GRAMS,
    C4Quality,
    DocStats,
    FineWebQuality,
    GopherQuality,
    GopherRepetition,
    _datatrove,
)
from pipelines.steps.heuristics.gopher import repeated_n_gram_chars, top_n_gram_chars
from tests.pipelines.corpus import documents

BATCH = 100

# (step class, step parameters, datatrove's filter built the way its own users would build it)
CASES: list[tuple[type[Step], dict[str, Any], Callable[[], Any]]] = [
    (GopherQuality, {}, GopherQualityFilter),
    (
        GopherQuality,
        {
            "min_doc_words": 10,
            "max_doc_words": 400,
            "min_avg_word_length": 4,
            "max_avg_word_length": 7.5,
            "max_symbol_word_ratio": 0.02,
            "max_bullet_lines_ratio": 0.4,
            "max_ellipsis_lines_ratio": 0.1,
            "max_non_alpha_words_ratio": 0.9,
            "min_stop_words": 4,
            "stop_words": ["the", "a", "of", "is", "to", "and", "in"],
        },
        lambda: GopherQualityFilter(
            min_doc_words=10,
            max_doc_words=400,
            min_avg_word_length=4,
            max_avg_word_length=7.5,  # type: ignore[arg-type]
            max_symbol_word_ratio=0.02,
            max_bullet_lines_ratio=0.4,
            max_ellipsis_lines_ratio=0.1,
            max_non_alpha_words_ratio=0.9,
            min_stop_words=4,
            stop_words=["the", "a", "of", "is", "to", "and", "in"],
        ),
    ),
    (
        GopherQuality,
        {"min_doc_words": None, "max_avg_word_length": None, "min_stop_words": None},
        lambda: GopherQualityFilter(
            min_doc_words=None, max_avg_word_length=None, min_stop_words=None
        ),
    ),
    (GopherRepetition, {}, GopherRepetitionFilter),
    (
        GopherRepetition,
        {
            "dup_line_frac": 0.1,
            "dup_para_frac": 0.5,
            "dup_line_char_frac": 0.05,
            "dup_para_char_frac": None,
            "top_n_grams": [[2, 0.3], [3, None], [5, 0.1]],
            "dup_n_grams": [[4, 0.3], [7, 0.05]],
        },
        lambda: GopherRepetitionFilter(
            dup_line_frac=0.1,
            dup_para_frac=0.5,
            dup_line_char_frac=0.05,
            dup_para_char_frac=None,
            top_n_grams=((2, 0.3), (5, 0.1)),  # type: ignore[arg-type]
            dup_n_grams=((4, 0.3), (7, 0.05)),  # type: ignore[arg-type]
        ),
    ),
    (
        GopherRepetition,
        {
            "dup_line_frac": 0,
            "dup_para_char_frac": 0,
            "top_n_grams": [[1, 0.08], [2, None]],
            "dup_n_grams": [[3, 0.2], [2, 0.25]],
        },
        lambda: GopherRepetitionFilter(
            dup_line_frac=0,
            dup_para_char_frac=0,
            top_n_grams=((1, 0.08),),  # type: ignore[arg-type]
            dup_n_grams=((3, 0.2), (2, 0.25)),  # type: ignore[arg-type]
        ),
    ),
    (C4Quality, {}, C4QualityFilter),
    (
        C4Quality,
        {
            "split_paragraph": False,
            "remove_citations": False,
            "min_num_sentences": 2,
            "min_words_per_line": 5,
            "max_word_length": 30,
            "filter_lorem_ipsum": False,
            "filter_javascript": False,
        },
        lambda: C4QualityFilter(
            split_paragraph=False,
            remove_citations=False,
            min_num_sentences=2,
            min_words_per_line=5,
            max_word_length=30,
            filter_lorem_ipsum=False,
            filter_javascript=False,
        ),
    ),
    (
        C4Quality,
        {
            "min_num_sentences": None,
            "min_words_per_line": None,
            "max_word_length": None,
            "filter_no_terminal_punct": False,
            "filter_curly_bracket": False,
            "filter_policy": False,
        },
        lambda: C4QualityFilter(
            min_num_sentences=-1,
            min_words_per_line=-1,
            max_word_length=-1,
            filter_no_terminal_punct=False,
            filter_curly_bracket=False,
            filter_policy=False,
        ),
    ),
    (FineWebQuality, {}, FineWebQualityFilter),
    (
        FineWebQuality,
        {
            "line_punct_thr": 0.5,
            "line_punct_exclude_zero": True,
            "stop_chars": [".", "!"],
            "short_line_thr": 0.3,
            "short_line_length": 50,
            "char_duplicates_ratio": 0.1,
            "new_line_ratio": 0.1,
        },
        lambda: FineWebQualityFilter(
            line_punct_thr=0.5,
            line_punct_exclude_zero=True,
            stop_chars=(".", "!"),
            short_line_thr=0.3,
            short_line_length=50,
            char_duplicates_ratio=0.1,
            new_line_ratio=0.1,
        ),
    ),
]


def run(step: Step, texts: tuple[str, ...] | list[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {s.name: [] for s in step.signals()}
    for start in range(0, len(texts), BATCH):
        batch = [Document(id=i, text=t) for i, t in enumerate(texts[start : start + BATCH], start)]
        for name, values in step.run(batch).items():
            out[name].extend(values)
    return out


def datatrove_verdict(datatrove_filter: Any, text: str) -> tuple[bool | None, str | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's mean of no words
            keep, reason = get_filter_result(
                datatrove_filter.filter(DatatroveDocument(text=text, id="x"))
            )
    except ZeroDivisionError:
        return None, None
    return bool(keep), (None if keep else reason)


@pytest.fixture(scope="module")
def corpus() -> tuple[str, ...]:
    return documents()


def one(step: Step, text: str) -> dict[str, Any]:
    return {name: values[0] for name, values in step.run([Document(id=1, text=text)]).items()}


@pytest.mark.parametrize(("step_class", "params", "make_filter"), CASES)
def test_verdicts_and_reasons_equal_datatrove_filters(
    corpus: tuple[str, ...],
    step_class: type[Step],
    params: dict[str, Any],
    make_filter: Callable[[], Any],
) -> None:
    step = step_class(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = run(step, corpus)
    datatrove_filter = make_filter()
    expected = [datatrove_verdict(datatrove_filter, text) for text in corpus]
    got = list(zip(out[f"{step.name}_keep"], out[f"{step.name}_reason"], strict=True))
    pairs = enumerate(zip(expected, got, strict=True))
    mismatches = [(i, corpus[i][:80], e, g) for i, (e, g) in pairs if e != g]
    assert len(corpus) >= 600
    assert mismatches == []
    # The corpus exercises both verdicts.
    assert {keep for keep, _ in got} >= {True, False}


def test_gopher_quality_numbers_reproduce_its_verdicts(corpus: tuple[str, ...]) -> None:
    out = run(GopherQuality(), corpus)
    p = "gopher_quality_"
    for i in range(len(corpus)):
        v = {name.removeprefix(p): values[i] for name, values in out.items()}
        if v["word_count"] < 50:
            reason = "gopher_short_doc"
        elif v["word_count"] > 100000:
            reason = "gopher_long_doc"
        elif v["mean_word_length"] < 3:
            reason = "gopher_below_avg_threshold"
        elif v["mean_word_length"] > 10:
            reason = "gopher_above_avg_threshold"
        elif v["hash_word_ratio"] > 0.1:
            reason = "gopher_too_many_hashes"
        elif v["ellipsis_word_ratio"] > 0.1:
            reason = "gopher_too_many_ellipsis"
        elif v["bullet_lines_ratio"] > 0.9:
            reason = "gopher_too_many_bullets"
        elif v["ellipsis_lines_ratio"] > 0.3:
            reason = "gopher_too_many_end_ellipsis"
        elif v["alpha_words_ratio"] < 0.8:
            reason = "gopher_below_alpha_threshold"
        elif v["stop_word_count"] < 2:
            reason = "gopher_enough_stop_words"
        else:
            reason = None
        assert (v["keep"], v["reason"]) == (reason is None, reason), corpus[i][:200]


def test_gopher_repetition_numbers_reproduce_its_verdicts(corpus: tuple[str, ...]) -> None:
    out = run(GopherRepetition(), corpus)
    p = "gopher_repetition_"
    rules = [
        ("dup_para_frac", 0.3, "dup_para_frac"),
        ("dup_para_char_frac", 0.2, "dup_para_char_frac"),
        ("dup_line_frac", 0.3, "dup_line_frac"),
        ("dup_line_char_frac", 0.2, "dup_line_char_frac"),
        *((f"top_{n}_gram_char_frac", f, f"top_{n}_gram") for n, f in TOP_N_GRAMS),
        *((f"dup_{n}_gram_char_frac", f, f"duplicated_{n}_n_grams") for n, f in DUP_N_GRAMS),
    ]
    for i, text in enumerate(corpus):
        v = {name.removeprefix(p): values[i] for name, values in out.items()}
        if not text:
            assert (v["keep"], v["reason"]) == (False, "empty")
            continue
        reason = next((r for key, bound, r in rules if v[key] is not None and v[key] > bound), None)
        assert (v["keep"], v["reason"]) == (reason is None, reason), text[:200]


def test_fineweb_numbers_reproduce_its_verdicts(corpus: tuple[str, ...]) -> None:
    out = run(FineWebQuality(), corpus)
    p = "fineweb_quality_"
    for i, text in enumerate(corpus):
        v = {name.removeprefix(p): values[i] for name, values in out.items()}
        if v["line_punct_ratio"] is None:
            reason: str | None = "empty"
        elif v["line_punct_ratio"] < 0.12:
            reason = "line_punct_ratio"
        elif v["short_line_ratio"] > 0.67:
            reason = "short_line_ratio"
        elif v["char_dup_ratio"] > 0.01:
            reason = "char_dup_ratio"
        elif v["newline_word_ratio"] > 0.3:
            reason = "list_ratio"
        else:
            reason = None
        assert (v["keep"], v["reason"]) == (reason is None, reason), text[:200]


def test_c4_numbers_agree_with_its_verdicts(corpus: tuple[str, ...]) -> None:
    out = run(C4Quality(), corpus)
    p = "c4_quality_"
    for i, text in enumerate(corpus):
        v = {name.removeprefix(p): values[i] for name, values in out.items()}
        removed = sum(v[f"{rule}_lines"] for rule in C4Quality.RULES)
        assert v["kept_line_count"] + removed == v["line_count"]
        whole_doc = v["lorem_ipsum_lines"] + v["curly_bracket_lines"]
        if whole_doc:
            assert v["reason"] in ("lorem_ipsum", "curly_bracket"), text[:200]
            assert v["reason"] == "curly_bracket" or v["lorem_ipsum_lines"]
        else:
            assert v["keep"] == (v["sentence_count"] >= 5), text[:200]


def test_gopher_quality_numbers_by_hand() -> None:
    v = one(GopherQuality(), "- The cat sat on the mat.\n• the dog ...\n#1 #2 …\nit is ok")
    # 20 words: - The cat sat on the mat . • the dog ... # 1 # 2 … it is ok
    # Punctuation only: - . ... # # … ("•" is not in datatrove's punctuation list).
    assert v["gopher_quality_word_count"] == 14
    assert v["gopher_quality_mean_word_length"] == pytest.approx(32 / 14)
    assert v["gopher_quality_hash_word_ratio"] == pytest.approx(2 / 20)
    assert v["gopher_quality_ellipsis_word_ratio"] == pytest.approx(2 / 20)
    assert v["gopher_quality_bullet_lines_ratio"] == 0.5
    assert v["gopher_quality_ellipsis_lines_ratio"] == 0.5
    assert v["gopher_quality_alpha_words_ratio"] == pytest.approx(11 / 20)
    assert v["gopher_quality_stop_word_count"] == 1  # "the" twice; "The" is not a stop word
    assert (v["gopher_quality_keep"], v["gopher_quality_reason"]) == (False, "gopher_short_doc")


def test_gopher_repetition_numbers_by_hand() -> None:
    text = "alpha beta\ngamma delta\nalpha beta\ngamma delta"
    v = one(GopherRepetition(), text)
    assert v["gopher_repetition_dup_line_frac"] == 0.5
    assert v["gopher_repetition_dup_line_char_frac"] == pytest.approx(21 / 45)
    assert v["gopher_repetition_dup_para_frac"] == 0.0
    # "alpha beta" occurs twice among the 2-grams: 10 characters x 2.
    assert v["gopher_repetition_top_2_gram_char_frac"] == pytest.approx(20 / 45)
    # the second "alpha beta gamma delta" repeats the first: 20 characters without spaces.
    assert v["gopher_repetition_dup_5_gram_char_frac"] == 0.0
    assert v["gopher_repetition_keep"] is False
    assert v["gopher_repetition_reason"] == "dup_line_frac"
    paragraphs = one(GopherRepetition(), "one two\n\nthree four\n\none two\n\n\none two")
    assert paragraphs["gopher_repetition_dup_para_frac"] == 0.5


def test_c4_counts_by_hand() -> None:
    text = "\n".join(
        [
            "This is a fine sentence.",
            "no terminal punctuation here",
            "Too short.",
            "Please enable JavaScript to continue.",
            "We use cookies to improve this site.",
            "Another fine sentence here! And a second one.",
            "It ends with an ellipsis...",
        ]
    )
    v = one(C4Quality(), text)
    assert v["c4_quality_line_count"] == 7
    assert v["c4_quality_kept_line_count"] == 2
    assert v["c4_quality_kept_lines_frac"] == pytest.approx(2 / 7)
    assert v["c4_quality_sentence_count"] == 3
    assert v["c4_quality_no_terminal_punct_lines"] == 2
    assert v["c4_quality_too_few_words_lines"] == 1
    assert v["c4_quality_javascript_lines"] == 1
    assert v["c4_quality_policy_lines"] == 1
    assert (v["c4_quality_keep"], v["c4_quality_reason"]) == (False, "too_few_sentences")
    assert one(C4Quality(min_num_sentences=3), text)["c4_quality_keep"] is True


def test_c4_never_changes_the_stored_text() -> None:
    text = "Keep me, I am a sentence. And me.\nmenu | home\nMore text here. Yes!\nOne more line."
    doc = Document(id=1, text=text)
    step = C4Quality(min_num_sentences=2)
    out = step.run([doc])
    assert doc.text == text
    assert out["c4_quality_keep"] == [True]
    assert out["c4_quality_kept_lines_frac"] == [0.75]
    assert set(out) == {s.name for s in step.signals()}


def test_fineweb_numbers_by_hand() -> None:
    text = "Hello there friend.\nshort\n\n   \nHello there friend."
    v = one(FineWebQuality(), text)
    assert v["fineweb_quality_line_punct_ratio"] == pytest.approx(2 / 3)
    assert v["fineweb_quality_short_line_ratio"] == 1.0
    assert v["fineweb_quality_char_dup_ratio"] == pytest.approx(19 / (len(text) - 4))
    assert v["fineweb_quality_newline_word_ratio"] == pytest.approx(4 / 9)
    assert (v["fineweb_quality_keep"], v["fineweb_quality_reason"]) == (False, "short_line_ratio")


def test_doc_stats_by_hand() -> None:
    v = one(DocStats(), "Ab1 \nÉ")
    assert v == {
        "doc_stats_char_count": 6,
        "doc_stats_word_count": 2,
        "doc_stats_line_count": 2,
        "doc_stats_mean_line_length": 2.5,
        "doc_stats_non_ascii_ratio": pytest.approx(1 / 6),
        "doc_stats_uppercase_ratio": pytest.approx(2 / 6),
        "doc_stats_digit_ratio": pytest.approx(1 / 6),
        "doc_stats_whitespace_ratio": pytest.approx(2 / 6),
    }
    empty = one(DocStats(), "")
    assert empty["doc_stats_char_count"] == 0
    assert empty["doc_stats_whitespace_ratio"] is None


def test_doc_stats_ratios_match_datatrove_definitions(corpus: tuple[str, ...]) -> None:
    out = run(DocStats(), corpus)
    for i, text in enumerate(corpus):
        if not text:
            continue
        n = len(text)
        lines = text.split("\n")
        assert out["doc_stats_whitespace_ratio"][i] == sum(c.isspace() for c in text) / n
        assert out["doc_stats_uppercase_ratio"][i] == sum(c.isupper() for c in text) / n
        assert out["doc_stats_digit_ratio"][i] == sum(c.isdigit() for c in text) / n
        assert out["doc_stats_non_ascii_ratio"][i] == sum(ord(c) > 127 for c in text) / n
        assert out["doc_stats_line_count"][i] == len(lines)
        assert out["doc_stats_mean_line_length"][i] == sum(map(len, lines)) / len(lines)


def test_none_disables_a_threshold() -> None:
    short = "The cat sat on the mat and looked at the dog."
    assert one(GopherQuality(), short)["gopher_quality_reason"] == "gopher_short_doc"
    assert one(GopherQuality(min_doc_words=None), short)["gopher_quality_keep"] is True

    no_punct = "\n".join(f"line number {i} has no end mark but many words in it" for i in range(9))
    assert one(FineWebQuality(), no_punct)["fineweb_quality_reason"] == "line_punct_ratio"
    relaxed = one(FineWebQuality(line_punct_thr=None), no_punct)
    assert relaxed["fineweb_quality_reason"] is None
    assert relaxed["fineweb_quality_line_punct_ratio"] == 0.0  # still measured

    # No n-gram repeats, yet the most frequent 4-gram, "a b c d" once, is 7 of 31 characters.
    text = "a b c d e f g h i j k l m n o p"
    assert one(GopherRepetition(), text)["gopher_repetition_reason"] == "top_4_gram"
    off = one(GopherRepetition(top_n_grams=((2, 0.2), (3, 0.18), (4, None))), text)
    assert off["gopher_repetition_keep"] is True
    assert off["gopher_repetition_top_4_gram_char_frac"] == pytest.approx(7 / 31)

    one_sentence = "Only one sentence stands here."
    assert one(C4Quality(), one_sentence)["c4_quality_reason"] == "too_few_sentences"
    assert one(C4Quality(min_num_sentences=None), one_sentence)["c4_quality_keep"] is True


def test_a_document_datatrove_cannot_judge_gets_no_verdict() -> None:
    # With the minimum length off, datatrove divides by the number of words: zero here.
    v = one(GopherQuality(min_doc_words=None), "\xa0")
    assert (v["gopher_quality_keep"], v["gopher_quality_reason"]) == (None, None)
    assert v["gopher_quality_word_count"] == 0
    assert v["gopher_quality_mean_word_length"] is None


@pytest.mark.parametrize(
    ("step_class", "params", "message"),
    [
        (GopherQuality, {"language": "xx-nowhere"}, "no word tokenizer"),
        (GopherQuality, {"stop_words": ["the", 3]}, "non-empty strings"),
        (GopherQuality, {"min_doc_words": "50"}, "expected int"),
        (GopherRepetition, {"top_n_grams": [[2, 0.2], [2, 0.3]]}, "once"),
        (GopherRepetition, {"dup_n_grams": [[0, 0.2]]}, "pairs"),
        (GopherRepetition, {"dup_n_grams": [5]}, "pairs"),
        (C4Quality, {"filter_policy": "yes"}, "expected bool"),
        (FineWebQuality, {"unknown": 1}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused(
    step_class: type[Step], params: dict[str, Any], message: str
) -> None:
    with pytest.raises(StepParamError, match=message):
        step_class(**params)


def test_memo_tokenizer_words_and_sentences_equal_datatrove_tokenizer(
    corpus: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[SpaCyTokenizer] = []

    def counting(language: str) -> SpaCyTokenizer:
        built.append(SpaCyTokenizer(language))
        return built[-1]

    # A small vocabulary bound, so that the private spaCy pipeline is rebuilt along the way.
    memo = _datatrove.MemoTokenizer("eng", max_strings=3000)
    monkeypatch.setattr(_datatrove, "SpaCyTokenizer", counting)
    datatrove_tokenizer = load_word_tokenizer("eng")
    texts = [*corpus, "don't (can't) e.g. U.S.A. :) 3.5kg", "a\n\n  b\tc \u00a0d"]
    lines = [line for text in texts for line in text.splitlines()]
    # Not among the lines: inside a memory zone, datatrove's sentence ends for a spaCy symbol
    # name are read from freed memory ((0, 2), (0, 100321314)...); ours say (0, 10).
    texts.append("IS_ALPHA x")
    assert [memo.word_tokenize(t) for t in texts] == [
        datatrove_tokenizer.word_tokenize(t) for t in texts
    ]
    assert [memo.span_tokenize(t) for t in lines] == [
        datatrove_tokenizer.span_tokenize(t) for t in lines
    ]
    assert len(built) > 1


N_GRAM_CASES = [
    [],
    ["one"],
    ["a", "b", "a", "b", "a", "b", "a", "b"],
    # Joined without spaces, "ab c" and "a bc" are the same 2-gram for the repetition count.
    ["ab", "c", "x", "a", "bc", "y", "ab", "c"],
    # A tie between 2-grams of different lengths: the first one met counts.
    ["long", "words", "x", "y", "long", "words", "x", "y"],
]


def test_n_gram_counts_equal_datatrove_functions(corpus: tuple[str, ...]) -> None:
    tokenizer = load_word_tokenizer("eng")
    word_lists = [*N_GRAM_CASES, *(tokenizer.word_tokenize(text) for text in corpus[::3])]
    ns = range(1, 11)
    for words in word_lists:
        repeated = repeated_n_gram_chars(words, ns)
        assert repeated == {n: find_all_duplicate(words, n) for n in ns}, words[:20]
        for n in ns:
            n_grams = get_n_grams(words, n)
            expected = find_top_duplicate(n_grams) if n_grams else None
            assert top_n_gram_chars(words, n) == expected, (n, words[:20])
    assert any(find_all_duplicate(words, 5) for words in word_lists)
