"""Simulated group owners (grid workers) who confirm customer-group tasks in their client.

Each owner belongs to one ConfirmClass for the whole run, drawn from the seed; each task's
delay is drawn from the seed and its msgid, so a run replays exactly.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable

from bot.wecom.simulator.config import ConfirmClass, OwnerProfile, Trigger
from bot.wecom.simulator.groups import Directory
from bot.wecom.simulator.tasks import Task
from bot.wecom.simulator.timers import Timers


class Owners:
    """Decides when each owner confirms, from what has reached them so far."""

    def __init__(
        self,
        profile: OwnerProfile,
        seed: int,
        directory: Directory,
        timers: Timers,
        confirm: Callable[[Task, float], None],
    ) -> None:
        self.profile = profile
        self._seed = seed
        self._directory = directory
        self._timers = timers
        self._confirm = confirm
        self._classes: dict[str, ConfirmClass] = {}
        self._open: defaultdict[str, dict[str, Task]] = defaultdict(dict)  # owner -> open tasks

    def class_of(self, userid: str) -> ConfirmClass:
        found = self._classes.get(userid)
        if found is None:
            found = self._classes[userid] = self._draw(userid)
        return found

    def _draw(self, userid: str) -> ConfirmClass:
        point, edge = random.Random(f"{self._seed}:owner:{userid}").random(), 0.0
        for cls in self.profile.classes:
            edge += cls.share
            if point < edge:
                return cls
        return self.profile.classes[-1]

    def created(self, task: Task) -> None:
        task.note("created", task.create_time)
        self._open[task.sender][task.msgid] = task
        self._trigger(task, "created", task.create_time)

    def closed(self, task: Task) -> None:
        self._open[task.sender].pop(task.msgid, None)

    def reminded(self, task: Task, at: float, source: str) -> None:
        """A reminder reached the owner of an open task."""
        task.note("reminded", at, source)
        self._trigger(task, "reminder", at)

    def app_message(self, userid: str, at: float) -> None:
        """A 1:1 app message reached `userid`: a reminder to an owner, an escalation to an
        officer (who phones the owners whose tasks wait)."""
        for task in list(self._open.get(userid, {}).values()):
            if at - task.create_time >= self.profile.reminder_min_age:
                self.reminded(task, at, "app_message")
        for owner in self._directory.owners_escalating_to(userid):
            for task in list(self._open.get(owner, {}).values()):
                if task.create_time < at:
                    if task.first("escalated") is None:
                        task.note("escalated", at, userid)
                    self._trigger(task, "escalation", at)

    def _trigger(self, task: Task, trigger: Trigger, at: float) -> None:
        cls = self.class_of(task.sender)
        if cls.trigger != trigger:
            return
        low, high = cls.delay
        due = at + random.Random(f"{self._seed}:{task.msgid}:{trigger}").uniform(low, high)
        if task.confirm_due is not None and task.confirm_due <= due:
            return
        task.confirm_due = due
        self._timers.call_at(due, lambda when: self._fire(task, when))

    def _fire(self, task: Task, due: float) -> None:
        if task.open and task.confirm_due == due:
            self._confirm(task, due)
