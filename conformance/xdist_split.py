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
work-stealing) when that is worth it (``worth_stealing``): when the other worker has finished no
item yet, is on an item that has run for ``STEAL_WORTH_SECONDS``, or has that much work queued at
its mean item time. A worker compiles its queued items ahead, whole batches at a time, so what is
stolen from a short queue was compiled already and is compiled again by the thief (measured on the
benchmark's 618 items: with the tail steals 7 more batch models and 33 more preparations; without
them ``-n 2`` wall 0.978x and CPU 0.962x, 8 paired runs); a slow item still does not leave a core idle. A crashed worker's items
go to its replacement, as with ``load``.

Used for xdist's default ``--dist load`` unless ``--xdist-split xdist`` is given; any other
``--dist`` is xdist's own. Needs pytest-xdist (imported only when xdist asks for a scheduler).
"""
from __future__ import annotations

import time
from collections.abc import Sequence

WORKER_INPUT_KEY = "conformance_split"   # set in a worker's ``workerinput`` when this scheduler serves it
# Stealing is worth it from a worker with at least this much work left (seconds): stolen items are
# compiled again by the thief, ~0.1 s for a batch's worth of small items here.
STEAL_WORTH_SECONDS = 1.0


def share(worker_id: str, worker_count: int, item_count: int) -> range:
    """Indices of the items (of ``item_count`` collected) that the scheduler sends worker
    ``worker_id`` ("gw0", "gw1", ...) of ``worker_count`` at the start: every ``worker_count``-th
    from its number. Empty for a worker started later (a crashed one's replacement, numbered
    ``worker_count`` or more), which gets what is left when it comes."""
    number = int(worker_id[2:]) if worker_id.startswith("gw") and worker_id[2:].isdigit() else -1
    if not 0 <= number < worker_count:
        return range(0)
    return range(number, item_count, worker_count)


def worth_stealing(queued: int, finished: int, busy_seconds: float, mean_seconds: float) -> bool:
    """Whether an idle worker should take half of another's queue of ``queued`` items, that worker
    having finished ``finished`` items at ``mean_seconds`` each and been on its current item for
    ``busy_seconds``: when its speed is unknown (nothing finished yet), or it is on a slow item, or
    its queue holds ``STEAL_WORTH_SECONDS`` of work."""
    return (finished == 0 or busy_seconds >= STEAL_WORTH_SECONDS
            or queued * mean_seconds >= STEAL_WORTH_SECONDS)


def make_scheduler(config, log):
    """The scheduler for ``pytest_xdist_make_scheduler`` (xdist imported here, not at plugin load)."""
    from xdist.scheduler.worksteal import MIN_PENDING, WorkStealingScheduling

    class SplitScheduling(WorkStealingScheduling):
        """xdist's work-stealing scheduler with a different first distribution: ``share`` for every
        worker, sent whole (work-stealing sends contiguous blocks to workers in the order they
        became ready, which a worker cannot know when its collection ends), and steals only when
        ``worth_stealing``. Crashed workers' items and shutdown are work-stealing's own."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.progress: dict = {}   # worker -> (items finished, their seconds, when the last one ended)

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

        def mark_test_complete(self, node, item_index: int, duration: float | None = None) -> None:
            finished, seconds, _ = self.progress.get(node, (0, 0.0, 0.0))
            self.progress[node] = (finished + 1, seconds + (duration or 0.0), time.monotonic())
            super().mark_test_complete(node, item_index, duration)

        def check_schedule(self) -> None:
            """Work-stealing's, except that a worker running dry waits (the run ends when every
            queue is down to its last item) rather than steal from a queue not ``worth_stealing``."""
            if self.pending or self.steal_requested_from_node is not None or self.collection is None:
                super().check_schedule()
                return
            up = [(node, pending) for node, pending in self.node2pending.items() if not node.shutting_down]
            if up and any(len(pending) < MIN_PENDING for _, pending in up):
                node, queue = max(up, key=lambda entry: len(entry[1]))
                finished, seconds, last = self.progress.get(node, (0, 0.0, 0.0))
                # ``queue`` holds the item it is on: the rest is what would be stolen from.
                if len(queue) >= MIN_PENDING and not worth_stealing(
                        len(queue) - 1, finished, time.monotonic() - last, seconds / max(finished, 1)):
                    return
            super().check_schedule()

        def _assign(self, node, indices: Sequence[int]) -> None:
            self.node2pending[node].extend(indices)
            node.send_runtest_some(list(indices))

    return SplitScheduling(config, log)
