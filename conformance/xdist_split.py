"""pytest-xdist scheduling for ``-n N``: each worker gets every N-th item up front.

xdist's default ``load`` scheduler sends a worker a quarter of its share first, then chunks that
shrink with what is left, so a worker never knows more than a few dozen of its items ahead. This
harness compiles the items it knows ahead as one model per batch (``api.RunSession``) and starts
compiling its first batches while torch is imported, at the end of collection; with ``load`` a
worker can do neither (measured: 62 models for the benchmark's 617 items against 40 for two
serial halves, and no early start). Here worker ``gwK`` of N is sent items K, K+N, K+2N, ... of the
collection at once, the split two serial runs over interleaved halves would make, so a worker
knows at the end of its own collection which items it will run (``share``) and batches them as
a serial run does. A worker that runs dry takes half of the longest queue left (xdist's
work-stealing, unchanged), so a slow item does not leave a core idle; a crashed worker's items
go to its replacement, as with ``load``.

Used for xdist's default ``--dist load`` unless ``--xdist-split xdist`` is given; any other
``--dist`` is xdist's own. Needs pytest-xdist (imported only when xdist asks for a scheduler).
"""
from __future__ import annotations

from collections.abc import Sequence

WORKER_INPUT_KEY = "conformance_split"   # set in a worker's ``workerinput`` when this scheduler serves it


def share(worker_id: str, worker_count: int, item_count: int) -> range:
    """Indices of the items (of ``item_count`` collected) that the scheduler sends worker
    ``worker_id`` ("gw0", "gw1", ...) of ``worker_count`` at the start: every ``worker_count``-th
    from its number. Empty for a worker started later (a crashed one's replacement, numbered
    ``worker_count`` or more), which gets what is left when it comes."""
    number = int(worker_id[2:]) if worker_id.startswith("gw") and worker_id[2:].isdigit() else -1
    if not 0 <= number < worker_count:
        return range(0)
    return range(number, item_count, worker_count)


def make_scheduler(config, log):
    """The scheduler for ``pytest_xdist_make_scheduler`` (xdist imported here, not at plugin load)."""
    from xdist.scheduler import WorkStealingScheduling

    class SplitScheduling(WorkStealingScheduling):
        """xdist's work-stealing scheduler with a different first distribution: ``share`` for every
        worker, sent whole (work-stealing sends contiguous blocks to workers in the order they
        became ready, which a worker cannot know when its collection ends). Everything after it,
        stealing for idle workers, crashed workers' items and shutdown, is work-stealing's own."""

        def schedule(self) -> None:
            if self.collection is not None:
                super().schedule()   # a replacement worker: work-stealing serves it
                return
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")   # as xdist's schedulers do
                return
            self.collection = list(next(iter(self.node2collection.values())))
            if not self.collection:
                return
            assigned: set[int] = set()
            for node in self.nodes:
                indices = list(share(node.gateway.id, self.numnodes, len(self.collection)))
                if indices:
                    self._assign(node, indices)
                    assigned.update(indices)
            # Items no worker's number covers (a worker replaced before the start): as work-stealing does.
            self.pending[:] = [index for index in range(len(self.collection)) if index not in assigned]
            self.check_schedule()

        def _assign(self, node, indices: Sequence[int]) -> None:
            self.node2pending[node].extend(indices)
            node.send_runtest_some(list(indices))

    return SplitScheduling(config, log)
