"""The shard's xdist scheduling (`run.scheduling.LoadGroupOnce`): a cell that killed its worker is not run again, the
rest of its group is, and a replacement worker still collecting is given work only once it has collected."""

from __future__ import annotations

from types import SimpleNamespace

from xentcompat.run.scheduling import LoadGroupOnce

CELLS = ["m.py::t[a]@compiled", "m.py::t[b]@compiled", "m.py::t[c]@compiled", "m.py::t[d]", "m.py::t[e]"]


class Worker:
    def __init__(self, name: str):
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[str] = []

    def send_runtest_some(self, indices):
        self.sent += [CELLS[index] for index in indices]

    def shutdown(self):
        self.shutting_down = True


def _scheduler(*workers: Worker) -> LoadGroupOnce:
    config = SimpleNamespace(getvalue=lambda name: {"tx": [f"{len(workers)}*popen"]}[name],
                             option=SimpleNamespace(loadscopereorder=False))
    scheduler = LoadGroupOnce(config)
    for worker in workers:
        scheduler.add_node(worker)
    for worker in workers:
        scheduler.add_node_collection(worker, CELLS)
    scheduler.schedule()
    return scheduler


def test_the_cell_that_killed_its_worker_is_not_queued_again_and_the_rest_of_its_group_is():
    first, second = Worker("gw0"), Worker("gw1")
    scheduler = _scheduler(first, second)
    assert first.sent[:3] == CELLS[:3]  # the compiled group goes to one worker
    scheduler.mark_test_complete(first, 0)
    assert scheduler.remove_node(first) == CELLS[1]  # gw0 died running t[b]
    queued = [cell for unit in scheduler.workqueue.values() for cell, done in unit.items() if not done]
    handed = [cell for unit in scheduler.assigned_work[second].values() for cell, done in unit.items() if not done]
    assert CELLS[1] not in queued + handed + second.sent
    assert CELLS[2] in queued + handed + second.sent  # t[c], not run yet, runs elsewhere


def test_a_replacement_still_collecting_gets_work_once_it_has_collected():
    first, second = Worker("gw0"), Worker("gw1")
    scheduler = _scheduler(first, second)
    replacement = Worker("gw2")
    scheduler.add_node(replacement)  # started after a crash, collection not in yet
    scheduler.remove_node(first)  # xdist alone: KeyError for gw2 here
    assert replacement.sent == [] and not replacement.shutting_down
    scheduler.add_node_collection(replacement, CELLS)
    scheduler.schedule()
    assert replacement.sent or not scheduler.workqueue
