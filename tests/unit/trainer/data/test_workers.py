"""Loader workers split a rank's stream by whole micro-batches, counted from the resume position."""

from types import SimpleNamespace

from trainer.data import workers


def test_each_worker_takes_every_other_micro_batch(monkeypatch):
    assert all(workers.worker_share(0, 4)(q) for q in range(10))  # not in a worker: everything
    taken = {}
    for w in (0, 1):
        monkeypatch.setattr(workers, "get_worker_info", lambda w=w: SimpleNamespace(id=w, num_workers=2))
        taken[w] = [q for q in range(6, 20) if workers.worker_share(6, 4)(q)]
    assert taken[0] == [6, 7, 8, 9, 14, 15, 16, 17] and taken[1] == [10, 11, 12, 13, 18, 19]
