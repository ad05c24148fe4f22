"""Block sizing of the engine dataset: batch-sized blocks for small grids, a bounded block count for big ones.

Pure arithmetic: no Ray.
"""

from __future__ import annotations

import math

import pytest

from evalsvc.pipeline.dataset import MAX_BLOCKS, MAX_ITEMS_PER_BLOCK, items_per_block


@pytest.mark.parametrize(
    ("total_items", "rows_per_item", "batch_size", "expected"),
    [
        (20, 8, 8, 1),  # the fault/resume test grids: one item (one batch of rows) per block
        (20, 2, 8, 4),
        (900, 4, 64, 16),  # MedSafetyBench test × 4 strategies at the default batch size
        (100, 64, 16, 1),  # more rows per item than a batch: still one item per block
        (25_000, 4, 16, 98),  # 100k records: ~256 blocks instead of 6,250
        (74_374, 4, 64, 291),  # 300k records
        (10_000_000, 4, 64, MAX_ITEMS_PER_BLOCK),  # the cap wins
        (10, 1, 4096, MAX_ITEMS_PER_BLOCK),  # a batch bigger than the cap
        (0, 4, 64, 16),
    ],
)
def test_items_per_block(total_items, rows_per_item, batch_size, expected):
    assert items_per_block(total_items, rows_per_item, batch_size) == expected


@pytest.mark.parametrize("total_items", [1, 255, 256, 257, 1_000, 25_000, 74_374, MAX_BLOCKS * MAX_ITEMS_PER_BLOCK])
def test_block_count_is_bounded(total_items):
    per_block = items_per_block(total_items, rows_per_item=4, batch_size=16)
    assert math.ceil(total_items / per_block) <= MAX_BLOCKS


def test_small_grids_keep_batch_sized_blocks():
    # Below MAX_BLOCKS batches the block is one engine batch of rows, whatever the grid's size.
    for total in range(1, MAX_BLOCKS * 4 + 1, 37):
        assert items_per_block(total, rows_per_item=4, batch_size=16) == 4
