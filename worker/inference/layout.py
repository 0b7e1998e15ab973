"""Where each item's tokens sit in a packed batch: pure arithmetic, no torch.

A sampling holds its items end to end in one state of ``sum(lengths)``
frames. The model sees a packed row of rows: each item once with its
reference and text (the conditional branch) and, when that item is guided,
once more without them (the unconditional branch of classifier-free
guidance). Rows of equal length sit side by side, so the layers that must see
one row at a time (the convolutional position embedding, and attention where
no variable-length kernel is exact) run once per distinct length on a batch
of equal rows instead of once per row.

For CUDA graphs the packed row is padded to a bucket length with a dummy
row: a graph replays one fixed shape, so a bounded set of lengths serves any
batch. The dummy row attends only to itself, so the real rows come out as
without it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

DUMMY = -1            # the item number of the padding row
BUCKET_STEP = 256     # bucket lengths are multiples of this ...
BUCKET_GROWTH = 8     # ... and at most 1/8 longer than the packed row (past 8 steps)


@dataclass(frozen=True, order=True)
class Row:
    item: int             # index into the sampling's items; DUMMY for padding
    unconditional: bool
    length: int


@dataclass(frozen=True)
class Group:
    """Adjacent rows of one length: ``count`` rows from token ``start`` on."""
    start: int
    count: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.count * self.length


@dataclass(frozen=True)
class Layout:
    rows: tuple           # Row, in packed order
    lengths: tuple        # each item's length in frames (the state's layout)

    @property
    def total(self) -> int:
        return sum(row.length for row in self.rows)

    @property
    def items_total(self) -> int:
        return sum(self.lengths)

    def starts(self) -> list:
        starts, position = [], 0
        for row in self.rows:
            starts.append(position)
            position += row.length
        return starts

    def offsets(self) -> list:
        """Where each item starts in the state."""
        offsets, position = [], 0
        for length in self.lengths:
            offsets.append(position)
            position += length
        return offsets

    def groups(self) -> list:
        groups = []
        for row, start in zip(self.rows, self.starts()):
            last = groups[-1] if groups else None
            if last is not None and last.length == row.length and last.end == start:
                groups[-1] = Group(last.start, last.count + 1, row.length)
            else:
                groups.append(Group(start, 1, row.length))
        return groups

    def cu_seqlens(self) -> list:
        """Row boundaries as variable-length attention kernels take them."""
        return self.starts() + [self.total]

    def token_index(self) -> list:
        """For each packed token, the state frame it reads (the dummy row reads frame 0)."""
        offsets, index = self.offsets(), []
        for row in self.rows:
            if row.item == DUMMY:
                index.extend([0] * row.length)
            else:
                index.extend(range(offsets[row.item], offsets[row.item] + row.length))
        return index

    def branch_index(self, unconditional: bool) -> list:
        """For each state frame, the packed token of its item's row in that branch;
        an item without that branch points at its conditional row."""
        where = {}
        for row, start in zip(self.rows, self.starts()):
            if row.item != DUMMY and (row.unconditional == unconditional
                                      or row.item not in where):
                where[row.item] = start
        index = []
        for item, length in enumerate(self.lengths):
            index.extend(range(where[item], where[item] + length))
        return index

    def positions(self) -> list:
        """Each packed token's position within its own row (what rotary encodes)."""
        positions = []
        for row in self.rows:
            positions.extend(range(row.length))
        return positions


def plan(lengths: list, guided: list) -> Layout:
    """Rows for items of these lengths; a guided item gets its unconditional row too.
    Rows are ordered by length, so rows of one length form one group."""
    rows = [Row(item, branch, length) for item, length in enumerate(lengths)
            for branch in ((False, True) if guided[item] else (False,))]
    rows.sort(key=lambda row: (row.length, row.item, row.unconditional))
    return Layout(tuple(rows), tuple(lengths))


def split(layout: Layout, shards: int) -> list:
    """The rows in up to ``shards`` layouts of about equal tokens (the CPU's row
    threads): the longest rows first, each to the lightest shard so far; in each,
    rows in ``plan``'s order. Laid end to end (``joined``) they are the packed row."""
    parts = [[] for _ in range(max(1, min(shards, len(layout.rows))))]
    sizes = [0] * len(parts)
    for row in sorted(layout.rows, key=lambda row: -row.length):
        lightest = sizes.index(min(sizes))
        parts[lightest].append(row)
        sizes[lightest] += row.length
    order = {row: index for index, row in enumerate(layout.rows)}
    return [Layout(tuple(sorted(rows, key=order.get)), layout.lengths) for rows in parts]


def joined(parts: list) -> Layout:
    return Layout(tuple(row for part in parts for row in part.rows), parts[0].lengths)


def padded(layout: Layout, total: int) -> Layout:
    """The layout with a dummy row at the end that fills it to ``total`` tokens."""
    extra = total - layout.total
    if extra < 0:
        raise ValueError(f"a layout of {layout.total} tokens does not fit {total}")
    if extra == 0:
        return layout
    return Layout(layout.rows + (Row(DUMMY, False, extra),), layout.lengths)


def bucket_length(tokens: int) -> int:
    """The length a packed row of ``tokens`` is padded to for a CUDA graph.

    Multiples of BUCKET_STEP, spaced so that padding stays under 1/BUCKET_GROWTH
    of the row past the first few steps: a few dozen buckets cover 256 to 64 k
    tokens, so the graphs a worker keeps serve every batch."""
    if tokens <= 0:
        raise ValueError("a packed row has at least one token")
    steps = math.ceil(tokens / BUCKET_STEP)
    if steps > BUCKET_GROWTH:
        # In each octave of step counts, BUCKET_GROWTH evenly spaced buckets.
        grain = 2 ** int(math.log2(steps / BUCKET_GROWTH))
        steps = math.ceil(steps / grain) * grain
    return steps * BUCKET_STEP
