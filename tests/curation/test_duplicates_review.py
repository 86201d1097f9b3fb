"""Duplicate review: verdicts, word diffs, the browse and group pages, false-positive rates."""

from __future__ import annotations

import pytest
from django.test import Client

from curation.duplicate_selectors import duplicate_review_stats, word_diff
from curation.errors import PermanentError
from curation.models import DuplicateGroup, DuplicateMember, DuplicateVerdict
from curation.services.duplicates import duplicate_verdict_clear, duplicate_verdict_set
from tests.curation.factories import UserFactory, make_dataset
from tests.curation.recipe_factories import build_world, representative
from tests.pipelines.factories import add_documents

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_client(client: Client) -> Client:
    client.force_login(UserFactory.create(username="reviewer"))
    return client


def member(group: DuplicateGroup) -> int:
    return group.members.filter(is_representative=False).order_by("document_id")[0].document_id


def test_a_pair_verdict_is_stored_once_in_order_and_can_be_replaced_or_cleared() -> None:
    world = build_world(n=100)
    group = world.groups["exact"][0]
    rep, other = representative(group), member(group)
    user = UserFactory.create()
    duplicate_verdict_set(group=group, verdict="duplicate", user=user, document_id=other)
    verdict = duplicate_verdict_set(
        group=group, verdict="not_duplicate", user=user, document_id=other
    )
    assert (verdict.document_a, verdict.document_b) == tuple(sorted((rep, other)))
    assert DuplicateVerdict.objects.filter(group=group).count() == 1
    assert verdict.verdict == "not_duplicate" and verdict.user == user
    duplicate_verdict_set(group=group, verdict="not_duplicate", user=user)
    assert DuplicateVerdict.objects.filter(group=group).count() == 2
    assert duplicate_verdict_clear(group=group, document_id=other) == 1
    assert DuplicateVerdict.objects.get(group=group).document_a is None


def test_verdicts_refuse_the_representative_and_strangers() -> None:
    world = build_world(n=100)
    group = world.groups["exact"][0]
    with pytest.raises(PermanentError, match="representative"):
        duplicate_verdict_set(
            group=group, verdict="duplicate", user=None, document_id=representative(group)
        )
    stranger = next(d for d in world.ids if not group.members.filter(document_id=d).exists())
    with pytest.raises(PermanentError, match="not a member"):
        duplicate_verdict_set(group=group, verdict="duplicate", user=None, document_id=stranger)
    with pytest.raises(PermanentError, match="verdict must be"):
        duplicate_verdict_set(group=group, verdict="maybe", user=None)


def test_word_diff_marks_what_differs_and_is_bounded() -> None:
    diff = word_diff("the quick brown fox jumps", "the quick red fox jumps high")
    assert [(s.kind, s.text) for s in diff.left] == [
        ("equal", "the quick"),
        ("delete", "brown"),
        ("equal", "fox jumps"),
    ]
    assert ("insert", "red") in [(s.kind, s.text) for s in diff.right]
    assert ("insert", "high") in [(s.kind, s.text) for s in diff.right]
    big = word_diff("a " * 20_000, "a " * 19_000 + "b")
    assert big.truncated
    assert sum(len(s.text.split()) for s in big.left) == 5000


def test_false_positive_rate_per_method_counts_the_newest_run() -> None:
    world = build_world(n=120)
    exact, minhash = world.groups["exact"], world.groups["minhash"]
    duplicate_verdict_set(group=exact[0], verdict="not_duplicate", user=None)
    duplicate_verdict_set(group=exact[1], verdict="duplicate", user=None)
    duplicate_verdict_set(
        group=exact[2], verdict="not_duplicate", user=None, document_id=member(exact[2])
    )
    duplicate_verdict_set(group=exact[3], verdict="duplicate", user=None)
    duplicate_verdict_set(group=world.groups["old"][0], verdict="not_duplicate", user=None)
    stats = {s.kind: s for s in duplicate_review_stats(dataset=world.dataset)}
    assert stats["exact"].groups == len(exact)
    assert (stats["exact"].reviewed, stats["exact"].not_duplicate) == (4, 2)
    assert stats["exact"].false_positive_rate == 0.5
    assert stats["minhash"].groups == len(minhash) and stats["minhash"].reviewed == 0
    assert stats["minhash"].false_positive_rate is None


def test_duplicates_page_lists_largest_first_by_kind_with_rates(user_client: Client) -> None:
    world = build_world(n=120)
    slug = world.dataset.slug
    big = world.groups["minhash"][0]
    duplicate_verdict_set(group=big, verdict="not_duplicate", user=None)
    page = user_client.get(f"/datasets/{slug}/duplicates/").content.decode()
    assert page.index(f'id="group-{big.pk}"') < page.index(
        f'id="group-{world.groups["exact"][1].pk}"'
    )
    assert f'id="group-{world.groups["old"][0].pk}"' not in page
    assert 'id="fp-rate-minhash">100%<' in page
    assert 'id="fp-rate-exact"><span class="muted">no reviews' in page
    exact_only = user_client.get(
        f"/datasets/{slug}/duplicates/?kind=exact", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert exact_only.lstrip().startswith('<div id="groups"')
    assert f'id="group-{big.pk}"' not in exact_only
    assert f'id="group-{world.groups["exact"][0].pk}"' in exact_only


def test_duplicates_page_paginates(user_client: Client) -> None:
    dataset = make_dataset("many-groups")
    ids = add_documents(dataset, [f"text {i}" for i in range(60)])
    for k in range(30):
        group = DuplicateGroup.objects.create(
            dataset=dataset,
            kind="exact",
            step="exact_dedup",
            step_version="1",
            run_key="run-9-exact_dedup",
            size=2,
        )
        DuplicateMember.objects.create(group=group, document_id=ids[2 * k], is_representative=True)
        DuplicateMember.objects.create(group=group, document_id=ids[2 * k + 1])
    first = user_client.get(f"/datasets/{dataset.slug}/duplicates/").content.decode()
    assert first.count('<tr id="group-') == 25 and "Page 1 of 2" in first
    second = user_client.get(f"/datasets/{dataset.slug}/duplicates/?page=2").content.decode()
    assert second.count('<tr id="group-') == 5


def test_group_page_shows_escaped_diffs_and_takes_verdicts(user_client: Client) -> None:
    dataset = make_dataset("escaped")
    rep, copy = add_documents(
        dataset,
        ["<b>bold</b> shared words here and more", "<script>alert(1)</script> shared words here"],
    )
    group = DuplicateGroup.objects.create(
        dataset=dataset,
        kind="minhash",
        step="minhash_dedup",
        step_version="1",
        run_key="run-1-minhash_dedup",
        size=2,
    )
    DuplicateMember.objects.create(group=group, document_id=rep, is_representative=True)
    DuplicateMember.objects.create(group=group, document_id=copy, similarity=0.8)
    url = f"/datasets/{dataset.slug}/duplicates/{group.pk}/"
    page = user_client.get(url).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<span class="diff-equal">shared words here</span>' in page
    assert '<span class="diff-delete">&lt;b&gt;bold&lt;/b&gt;</span>' in page
    response = user_client.post(
        f"{url}verdict/", {"verdict": "not_duplicate", "document": copy}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert "Not a duplicate (pair)" in body and "recipes keep it" in body
    verdict = DuplicateVerdict.objects.get(group=group)
    assert verdict.user is not None and verdict.user.username == "reviewer"
    plain = user_client.post(f"{url}verdict/", {"verdict": "duplicate"})
    assert plain.status_code == 302 and plain["Location"] == f"{url}?page=1"
    assert DuplicateVerdict.objects.get(group=group, document_a=None).verdict == "duplicate"
    refused = user_client.post(
        f"{url}verdict/", {"verdict": "duplicate", "document": rep}, HTTP_HX_REQUEST="true"
    )
    assert "representative" in refused.content.decode()
