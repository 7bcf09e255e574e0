"""What a collect operation answers: stored, needs confirmation, refused or forbidden."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from collect.access import Actor
from collect.models import Change, ChangeKind, Record, RecordKind
from collect.validate import Issue, Severity


class Outcome(StrEnum):
    STORED = "stored"
    CONFIRM = "confirm"  # warnings (确认保存) or a checksum override (确认无误) pending
    REFUSED = "refused"  # validation errors: fix and resend
    FORBIDDEN = "forbidden"  # not allowed for this sender / node
    BUSY = "busy"  # concurrent writers kept colliding: retry


CONFIRM_SAVE = "确认保存"
CONFIRM_CHECKSUM = "确认无误"


@dataclass(frozen=True, slots=True)
class Submission:
    """One submission of a record, from chat, the form or the CLI."""

    kind: RecordKind
    values: Mapping[str, str]
    actor: Actor
    source: str  # chat:<msgid> | form:<campaign> | cli
    change: ChangeKind = ChangeKind.COLLECT
    confirmed: bool = False  # the sender replied 确认保存: warnings accepted
    override: bool = False  # the sender replied 确认无误: checksum failure accepted
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    issues: tuple[Issue, ...] = ()
    record: Record | None = None
    address: Record | None = None
    created: bool = False
    changes: tuple[Change, ...] = ()
    message: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def confirm_word(self) -> str:
        checksum = any(i.severity is Severity.CHECKSUM for i in self.issues)
        return CONFIRM_CHECKSUM if checksum else CONFIRM_SAVE


def verdict(issues: tuple[Issue, ...], *, confirmed: bool, override: bool) -> Outcome | None:
    """REFUSED on errors, CONFIRM while a warning or checksum failure is unconfirmed, else None.

    确认无误 (override) is the stronger reply and also accepts plain warnings.
    """
    if any(i.severity is Severity.ERROR for i in issues):
        return Outcome.REFUSED
    if any(i.severity is Severity.CHECKSUM for i in issues) and not override:
        return Outcome.CONFIRM
    if any(i.severity is Severity.WARNING for i in issues) and not (confirmed or override):
        return Outcome.CONFIRM
    return None
