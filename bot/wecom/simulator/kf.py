"""微信客服 as residents_console_votes.md §1 describes it: accounts, links, sessions, the
message log sync_msg reads, and the send rules.

- Accounts and `add_contact_way` links (scene ≤32 bytes of [0-9a-zA-Z_-]).
- The log: every resident message and system event, plus the bot's own sends as hidden
  entries (sync_msg never returns what the app sent, §1.5, but they take cursor positions —
  so a page can come back empty with has_more = 1, §1.6). Retention 3 days.
- Callback tokens live 10 minutes; a sync_msg with an expired or unknown token is 95007.
- Sessions (§1.9): state 4 until the resident writes, then 0. send_msg only in state 0/1
  (95018), within 48 h of the resident's last message (95002), at most 5 messages in that
  window (95001); a new resident message opens a new window.
- enter_session carries a welcome_code when no welcome was sent in 48 h and the resident was
  not messaged; the code works once within 20 s (send_msg_on_event).
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.wecom.simulator import errors
from bot.wecom.simulator.errors import SimError

WINDOW = 48 * 3600.0  # send window after the resident's last message
MAX_PER_WINDOW = 5
TOKEN_TTL = 600.0  # callback Token (§1.5)
RETENTION = 3 * 86400.0  # sync_msg reads the last 3 days
WELCOME_TTL = 20.0  # welcome_code and end-of-session msg_code
POOL_CODE_TTL = 48 * 3600.0
SCENE = re.compile(r"[0-9a-zA-Z_-]{0,32}")
MSGID = re.compile(r"[0-9a-zA-Z_-]{1,32}")
TEXT_MAX = 2048

STATE_NEW, STATE_BOT, STATE_POOL, STATE_HUMAN, STATE_ENDED = 0, 1, 2, 3, 4
FAIL_EXPIRED, FAIL_LIMIT, FAIL_REFUSED = 4, 6, 10


@dataclass(slots=True)
class Account:
    open_kfid: str
    name: str
    avatar: str = ""
    manage_privilege: bool = True


@dataclass(slots=True)
class Session:
    """One resident with one kf account."""

    open_kfid: str
    external_userid: str
    state: int = STATE_ENDED  # entered but not written yet (§1.9)
    servicer: str = ""
    last_user_msg: float | None = None
    sent_in_window: int = 0
    last_welcome: float | None = None
    messaged_at: float | None = None  # the app last wrote to the resident
    refuses: bool = False  # the resident blocked the account: sends fail (fail_type 10)

    def effective_state(self, now: float) -> int:
        """A session ends 48 h after the resident's last message (§1.9)."""
        if self.last_user_msg is None or now - self.last_user_msg > WINDOW:
            return STATE_ENDED
        return self.state


@dataclass(slots=True)
class Entry:
    """One position in the log; `visible` False for what the app itself sent."""

    seq: int
    open_kfid: str
    at: float
    wire: dict[str, Any]
    visible: bool = True


@dataclass(slots=True)
class Code:
    """A send_msg_on_event code: single use, until `expires`."""

    open_kfid: str
    external_userid: str
    expires: float
    kind: str  # welcome | pool | end
    state: int  # the session state that produced it
    used: bool = False


@dataclass(slots=True)
class Outgoing:
    """A message the app sent to a resident (what the resident saw, unless it failed)."""

    open_kfid: str
    external_userid: str
    msgid: str
    msgtype: str
    content: str
    at: float
    via: str  # send_msg | send_msg_on_event
    failed: int = 0  # fail_type when a msg_send_fail followed


OnSent = Callable[[Outgoing], None]  # the simulator's residents react to what they got


@dataclass(slots=True)
class KfState:
    """Everything 微信客服 keeps; handlers mutate it synchronously (atomic per request)."""

    accounts: dict[str, Account] = field(default_factory=dict)
    links: dict[str, tuple[str, str]] = field(default_factory=dict)  # enc_scene -> kfid, scene
    sessions: dict[tuple[str, str], Session] = field(default_factory=dict)
    log: list[Entry] = field(default_factory=list)
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> kfid, expiry
    codes: dict[str, Code] = field(default_factory=dict)
    sent: list[Outgoing] = field(default_factory=list)
    msgids: set[tuple[str, str]] = field(default_factory=set)  # (open_kfid, msgid) used
    forced_empty_pages: int = 0
    on_sent: OnSent | None = None
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- accounts and links ----------------------------------------------------------------
    def add_account(self, name: str, open_kfid: str = "") -> str:
        open_kfid = open_kfid or "wk" + secrets.token_hex(15)
        self.accounts[open_kfid] = Account(open_kfid, name)
        return open_kfid

    def account(self, open_kfid: str) -> Account:
        if not open_kfid or len(open_kfid.encode()) > 64:
            raise SimError(errors.KF_INVALID_OPEN_KFID)
        found = self.accounts.get(open_kfid)
        if found is None:
            raise SimError(errors.KF_NO_SUCH_OPEN_KFID)
        return found

    def add_link(self, open_kfid: str, scene: str) -> str:
        self.account(open_kfid)
        if not SCENE.fullmatch(scene):
            raise SimError(errors.INVALID_PARAMETER, "invalid scene")
        enc = "ENC" + secrets.token_urlsafe(24)
        self.links[enc] = (open_kfid, scene)
        return f"https://work.weixin.qq.com/kfid/{open_kfid}?enc_scene={enc}"

    def resolve_link(self, url_or_scene: str) -> tuple[str, str, str]:
        """(open_kfid, scene, scene_param) for a link a resident opened, or a bare scene."""
        match = re.search(r"enc_scene=([A-Za-z0-9_-]+)", url_or_scene)
        if match and match.group(1) in self.links:
            open_kfid, scene = self.links[match.group(1)]
            param = re.search(r"scene_param=([^&]*)", url_or_scene)
            return open_kfid, scene, param.group(1) if param else ""
        for open_kfid, scene in self.links.values():
            if scene == url_or_scene:
                return open_kfid, scene, ""
        raise KeyError(f"no kf link for {url_or_scene!r}")

    def session(self, open_kfid: str, external_userid: str) -> Session:
        key = (open_kfid, external_userid)
        found = self.sessions.get(key)
        if found is None:
            found = self.sessions[key] = Session(open_kfid, external_userid)
        return found

    def find_session(self, external_userid: str) -> Session:
        """The resident's most recently active session (drivers name only the resident)."""
        mine = [s for s in self.sessions.values() if s.external_userid == external_userid]
        if not mine:
            raise KeyError(f"resident {external_userid!r} never entered 微信客服")
        return max(mine, key=lambda s: s.last_user_msg or 0.0)

    # --- the log ---------------------------------------------------------------------------
    def append(self, open_kfid: str, at: float, wire: dict[str, Any], *,
               visible: bool = True) -> Entry:
        entry = Entry(next(self._seq), open_kfid, at, wire, visible)
        self.log.append(entry)
        return entry

    def new_token(self, open_kfid: str, now: float) -> str:
        token = "ENC" + secrets.token_urlsafe(33)
        self.tokens[token] = (open_kfid, now + TOKEN_TTL)
        for stale in [t for t, (_, exp) in self.tokens.items() if exp < now - RETENTION]:
            del self.tokens[stale]
        return token

    def check_token(self, token: str, now: float) -> None:
        found = self.tokens.get(token)
        if found is None or now >= found[1]:
            raise SimError(errors.KF_INVALID_MSG_TOKEN)

    def page(self, cursor: int, limit: int, open_kfid: str, now: float
             ) -> tuple[list[dict[str, Any]], int, bool]:
        """(visible messages, next position, has_more) scanning at most `limit` entries."""
        if self.forced_empty_pages > 0:
            self.forced_empty_pages -= 1
            return [], cursor, True
        horizon = now - RETENTION
        position = max(cursor, self._first_seq_after(horizon))
        scanned, found = 0, []
        index = self._index_of(position)
        while index < len(self.log) and scanned < limit:
            entry = self.log[index]
            index += 1
            if open_kfid and entry.open_kfid != open_kfid:
                continue
            scanned += 1
            if entry.visible and entry.at >= horizon:
                found.append(entry.wire)
        has_more = any(open_kfid in ("", e.open_kfid) for e in self.log[index:])
        return found, index + 1, has_more

    def _index_of(self, seq: int) -> int:
        # seqs are dense and start at 1: position seq is list index seq - 1
        return max(0, min(len(self.log), seq - 1))

    def _first_seq_after(self, horizon: float) -> int:
        low, high = 0, len(self.log)
        while low < high:  # entries are appended in time order
            mid = (low + high) // 2
            if self.log[mid].at < horizon:
                low = mid + 1
            else:
                high = mid
        return self.log[low].seq if low < len(self.log) else len(self.log) + 1

    # --- codes -----------------------------------------------------------------------------
    def new_code(self, session: Session, kind: str, ttl: float, now: float) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = Code(session.open_kfid, session.external_userid, now + ttl, kind,
                                session.state)
        return code

    def take_code(self, code: str, now: float) -> Code:
        found = self.codes.get(code)
        if found is None or found.used or now >= found.expires:
            raise SimError(errors.KF_STATE_FORBIDS_SEND, "invalid or expired code")
        found.used = True
        return found

    def use_msgid(self, open_kfid: str, msgid: str) -> None:
        if not MSGID.fullmatch(msgid):
            raise SimError(errors.INVALID_PARAMETER, "invalid msgid")
        if (open_kfid, msgid) in self.msgids:
            raise SimError(errors.INVALID_PARAMETER, "msgid duplicated")
        self.msgids.add((open_kfid, msgid))

    def sent_to(self, external_userid: str) -> list[Outgoing]:
        return [o for o in self.sent if o.external_userid == external_userid]
