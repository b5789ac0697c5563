"""Batches of anchors followed by their mined neighbours; plain shuffled epochs until neighbours are mined."""
import io

import torch

from xmbench.registry import SAMPLERS


def sampler(n=10, batch_size=4, seed=0, **options):
    return SAMPLERS.bind(SAMPLERS.default("hard_negatives", **options))([str(i) for i in range(n)], batch_size, seed)


def expected_batches(order, neighbours, per_anchor, size, count):
    """The batches by hand: walk the anchors in order, each followed by its first neighbours not yet in the batch."""
    batches, position = [], 0
    for _ in range(count):
        batch = []
        while len(batch) < size:
            anchor = order[position % len(order)]
            position += 1
            if anchor in batch:
                continue
            batch.append(anchor)
            for nb in neighbours[anchor][:per_anchor]:
                if len(batch) < size and nb >= 0 and nb not in batch:
                    batch.append(nb)
        batches.append(batch)
    return batches


def test_anchors_bring_their_nearest_neighbours():
    s = sampler(n=10, batch_size=4, per_anchor=1)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0)).tolist()  # the sampler's first epoch
    neighbours = [[(i + 1) % 10, (i + 2) % 10] for i in range(10)]
    neighbours[order[0]] = [-1, -1]  # unknown: the anchor comes alone
    s.set_neighbours(torch.tensor(neighbours))
    got = [s.next().tolist() for _ in range(2)]
    assert got == expected_batches(order, neighbours, 1, 4, 2)
    assert got[0][0] == order[0] and got[0][1] == order[1]  # no neighbour after the first anchor
    anchors, added = s.last["anchors"], s.last["neighbours"]
    assert sorted(anchors + added) == sorted(got[1])
    assert all(any(nb in neighbours[a][:1] for a in anchors) for nb in added)


def test_several_neighbours_per_anchor_and_never_an_item_twice():
    s = sampler(n=10, batch_size=6, per_anchor=2, seed=1)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(1)).tolist()
    neighbours = [[(i + 1) % 10, (i + 2) % 10] for i in range(10)]
    s.set_neighbours(torch.tensor(neighbours))
    got = [s.next().tolist() for _ in range(1)]  # within one epoch of anchors
    assert got == expected_batches(order, neighbours, 2, 6, 1)
    for _ in range(30):
        rows = s.next().tolist()
        assert len(rows) == 6 and len(set(rows)) == 6


def test_without_neighbours_it_is_shuffled_epochs_and_the_state_round_trips():
    s = sampler(n=8, batch_size=4)
    assert sorted(torch.cat([s.next(), s.next()]).tolist()) == list(range(8))  # every item once per epoch
    s.set_neighbours(torch.tensor([[(i + 3) % 8] for i in range(8)]))
    s.next()
    buffer = io.BytesIO()
    torch.save(s.state_dict(), buffer)
    buffer.seek(0)
    resumed = sampler(n=8, batch_size=4, seed=5)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.neighbours.tolist() == s.neighbours.tolist()
    assert [resumed.next().tolist() for _ in range(5)] == [s.next().tolist() for _ in range(5)]
