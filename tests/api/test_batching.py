"""Lists asked together are ranked together (recommender.serving.batching) and each is what it
would be alone: the same courses, order, scores and reasons as one by one."""

from __future__ import annotations

import asyncio

import pytest

from recommender.domain import CATEGORIES
from recommender.serving.errors import InvalidInput
from recommender.serving.service import ListRequest


def _requests(tables) -> list[ListRequest]:
    """Known residents of every kind, residents the store does not hold, a category, no
    reasons, English, several lengths."""
    known = tables["residents"]["resident_id"].iloc[::13].tolist()  # ~60 residents
    out = []
    for n, resident_id in enumerate(known):
        out.append(ListRequest(resident_id, k=(3, 10, 20)[n % 3],
                               category=CATEGORIES[n % len(CATEGORIES)] if n % 5 == 0 else None,
                               explain=n % 7 != 0, lang="en" if n % 4 == 0 else "zh"))
    out += [ListRequest(f"nobody-{n}", k=10) for n in range(3)]
    return out


def _same(a: dict, b: dict) -> bool:
    """Equal answers but for the impression's id, which names each served list."""
    return {**a, "request_id": None} == {**b, "request_id": None}


def test_lists_ranked_together_equal_lists_ranked_alone(service, tables):
    requests = _requests(tables)
    alone = [service.for_resident(r.resident_id, k=r.k, category=r.category,
                                  explain=r.explain, lang=r.lang) for r in requests]
    together = service.for_residents(requests)
    assert len(together) == len(requests)
    for request, a, b in zip(requests, alone, together):
        assert not isinstance(b, Exception), (request, b)
        assert _same(a, b), request
    assert any(len(a["items"]) == a["k"] for a in alone)  # real lists, not empty ones


def test_a_failing_request_fails_alone(service, tables):
    requests = _requests(tables)[:6]
    bad = ListRequest(requests[0].resident_id, lang="fr")
    answers = service.for_residents([*requests[:3], bad, *requests[3:]])
    assert isinstance(answers[3], InvalidInput) and "fr" in str(answers[3])
    ok = [a for n, a in enumerate(answers) if n != 3]
    assert all(isinstance(a, dict) for a in ok) and any(a["items"] for a in ok)
    assert [a["resident_id"] for a in ok] == [r.resident_id for r in requests]


def test_requests_waiting_on_the_loop_are_ranked_together(service, tables):
    from recommender.serving.batching import ListBatcher

    requests = _requests(tables)[:20]
    batcher = ListBatcher(service.for_residents, max_batch=32)
    sizes: list[int] = []
    batcher.on_batch = sizes.append

    async def ask_all():
        return await asyncio.gather(*(batcher.submit(r) for r in requests),
                                    batcher.submit(ListRequest("x", lang="fr")),
                                    return_exceptions=True)

    answers = asyncio.run(ask_all())
    assert sizes == [21]  # one call for the 21 requests
    assert isinstance(answers[-1], InvalidInput)
    for request, answer in zip(requests, answers):
        alone = service.for_resident(request.resident_id, k=request.k,
                                     category=request.category, explain=request.explain,
                                     lang=request.lang)
        assert _same(alone, answer), request


@pytest.mark.parametrize("max_batch", [1, 4])
def test_a_long_queue_is_ranked_in_batches_of_at_most_max_batch(service, tables, max_batch):
    from recommender.serving.batching import ListBatcher

    sizes = []

    def rank_many(batch):
        sizes.append(len(batch))
        return service.for_residents(batch)

    batcher = ListBatcher(rank_many, max_batch=max_batch)
    requests = _requests(tables)[:9]

    async def ask_all():
        return await asyncio.gather(*(batcher.submit(r) for r in requests))

    answers = asyncio.run(ask_all())
    assert sizes == [max_batch] * (9 // max_batch) + ([9 % max_batch] if 9 % max_batch else [])
    assert [a["resident_id"] for a in answers] == [r.resident_id for r in requests]


def test_a_ranking_that_fails_fails_only_its_own_lists(service, tables, monkeypatch):
    """A failure inside a group's ranking is retried one by one: only the list that fails
    gets the error, in its group or alone in a group of its own."""
    import recommender.serving.service as service_module

    requests = _requests(tables)[:12]
    doomed = {requests[1].resident_id, requests[5].resident_id}
    real = service_module.diversify_many

    def failing(snap, lists, **kwargs):
        if any(ctx.user_id in doomed for ctx, _, _ in lists):
            raise RuntimeError("ranking failed")
        return real(snap, lists, **kwargs)

    monkeypatch.setattr(service_module, "diversify_many", failing)
    monkeypatch.setattr(service_module, "diversify", lambda snap, ctx, *a, **kw: failing(
        snap, [(ctx, a[0], a[1])], **kw)[0])
    answers = service.for_residents(requests)
    for request, answer in zip(requests, answers):
        if request.resident_id in doomed:
            assert isinstance(answer, RuntimeError), request
        else:
            assert isinstance(answer, dict), (request, answer)
    lone = service.for_residents([requests[1]])
    assert isinstance(lone[0], RuntimeError)
