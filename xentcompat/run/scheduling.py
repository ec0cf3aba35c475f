"""xdist's `--dist loadgroup` scheduling, less the rerun of a cell that killed its worker.

pytest-xdist 3.8's group scheduling (`LoadScopeScheduling.remove_node`) puts every unfinished test of a crashed worker
back in the queue, the one it was running included: a cell that kills its process (a native crash, an out-of-memory
kill, a device fault) runs again on the next worker and kills that one too. Its replacement, still collecting, is then
given work it cannot take (`KeyError` in `_assign_work_unit`), and the session stalls until the run's idle timeout
stops it. Here the crashed cell is left out of the queue (the shard records it as crashed: see `shard`), the rest of
its group runs on another worker, and a worker that has not finished collecting gets work once it has.
"""

from __future__ import annotations

from xdist.scheduler import LoadGroupScheduling


class LoadGroupOnce(LoadGroupScheduling):
    """`--dist loadgroup`, each test run at most once."""

    def remove_node(self, node) -> str | None:
        workload = self.assigned_work.pop(node)
        if not self._pending_of(workload):
            return None
        crashed = next(nodeid for unit in workload.values() for nodeid, done in unit.items() if not done)
        for scope, unit in workload.items():
            left = {nodeid: done for nodeid, done in unit.items() if nodeid != crashed}
            if not all(left.values()):
                self.workqueue[scope] = left
        for other in self.assigned_work:
            self._reschedule(other)
        return crashed

    def _reschedule(self, node) -> None:
        if node in self.registered_collections:  # a replacement still collecting is scheduled when it is done
            super()._reschedule(node)
