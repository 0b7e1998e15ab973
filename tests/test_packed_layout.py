"""The packed layout and the CUDA graph buckets: pure arithmetic, no torch."""
from __future__ import annotations

import pytest

from worker.inference import layout


def test_rows_of_one_length_sit_together_and_each_item_gets_its_branches():
    plan = layout.plan([40, 30, 40, 25], [True, False, True, True])
    assert [(row.item, row.unconditional) for row in plan.rows] == [
        (3, False), (3, True), (1, False), (0, False), (0, True), (2, False), (2, True)]
    assert [(g.start, g.count, g.length) for g in plan.groups()] == [
        (0, 2, 25), (50, 1, 30), (80, 4, 40)]
    assert plan.total == 25 * 2 + 30 + 40 * 4 and plan.items_total == 135
    assert plan.cu_seqlens() == [0, 25, 50, 80, 120, 160, 200, 240]


def test_token_and_branch_indexes_map_state_frames_to_rows_and_back():
    plan = layout.plan([3, 2], [True, False])
    # state: item 0 at frames 0-2, item 1 at 3-4; rows: (1, cond), (0, cond), (0, uncond)
    assert plan.offsets() == [0, 3]
    assert plan.token_index() == [3, 4, 0, 1, 2, 0, 1, 2]
    assert plan.branch_index(False) == [2, 3, 4, 0, 1]
    # item 1 has no unconditional row: it points at its conditional one
    assert plan.branch_index(True) == [5, 6, 7, 0, 1]
    assert plan.positions() == [0, 1, 0, 1, 2, 0, 1, 2]
    tokens = plan.token_index()
    for unconditional in (False, True):
        assert [tokens[i] for i in plan.branch_index(unconditional)] == list(range(5))


def test_padding_adds_one_dummy_row_that_no_item_reads():
    plan = layout.plan([3, 2], [True, True])
    padded = layout.padded(plan, 16)
    assert padded.total == 16 and padded.rows[-1] == layout.Row(layout.DUMMY, False, 6)
    assert padded.token_index()[:10] == plan.token_index() and padded.token_index()[10:] == [0] * 6
    assert padded.branch_index(True) == plan.branch_index(True)
    assert padded.groups()[:-1] == plan.groups() and padded.groups()[-1].length == 6
    assert layout.padded(plan, plan.total) is plan
    with pytest.raises(ValueError):
        layout.padded(plan, plan.total - 1)


@pytest.mark.parametrize("tokens", [1, 255, 256, 257, 2048, 2049, 5000, 16385, 40000, 65536])
def test_a_bucket_holds_the_row_with_bounded_padding(tokens):
    bucket = layout.bucket_length(tokens)
    assert bucket >= tokens and bucket % layout.BUCKET_STEP == 0
    if tokens > layout.BUCKET_STEP * layout.BUCKET_GROWTH:
        assert bucket - tokens <= tokens / layout.BUCKET_GROWTH
    assert layout.bucket_length(bucket) == bucket      # a bucket is its own bucket


def test_few_buckets_cover_every_length():
    buckets = {layout.bucket_length(tokens) for tokens in range(1, 65537)}
    assert len(buckets) <= 50
    assert max(buckets) == 65536


def test_rows_split_into_balanced_shards_each_row_once():
    plan = layout.plan([1266, 1257, 1293, 1302, 1266, 1275], [True] * 6)
    parts = layout.split(plan, 2)
    assert sorted(row for part in parts for row in part.rows) == sorted(plan.rows)
    sizes = [part.total for part in parts]
    assert max(sizes) - min(sizes) <= max(row.length for row in plan.rows)
    whole = layout.joined(parts)
    assert sorted(whole.token_index()) == sorted(plan.token_index())
    tokens = whole.token_index()
    assert [tokens[i] for i in whole.branch_index(True)] == list(range(plan.items_total))
    assert len(layout.split(layout.plan([5], [False]), 4)) == 1
    assert layout.split(plan, 1)[0] == plan
