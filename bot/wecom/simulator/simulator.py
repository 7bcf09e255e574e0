"""WeComSimulator: the facade tests, the demo and the benchmarks drive."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from bot.clock import Clock
from bot.wecom.simulator import admin, auth, payloads, server
from bot.wecom.simulator.callbacks import Callback, CallbackPoster, CallbackResult
from bot.wecom.simulator.chaos import Faults, Hold, Latency
from bot.wecom.simulator.config import FaultConfig, LatencyConfig, SimConfig
from bot.wecom.simulator.groups import AppChat, CustomerGroup, month_of
from bot.wecom.simulator.records import Delivery, Drop, Records
from bot.wecom.simulator.residents import KfDriver
from bot.wecom.simulator.state import SimState
from bot.wecom.simulator.tasks import SENT, Task


class WeComSimulator(KfDriver):
    """One simulated WeCom corp: the /cgi-bin/ API, owners, callbacks and what happened.

    微信客服 residents and members' photos/locations: see bot.wecom.simulator.residents."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.state = SimState(self.config)
        self.callbacks = CallbackPoster(self.config, self.state.records)
        self.login = auth.LoginDesk(self.state)  # member login: OAuth, QR, auth/getuserinfo
        self._msg_ids = itertools.count(1)
        self._app: web.Application | None = None
        self._kf_init()

    @property
    def app(self) -> web.Application:
        """The aiohttp Application serving /cgi-bin/ and /sim/ (built once)."""
        if self._app is None:
            self._app = web.Application(client_max_size=16 * 1024 * 1024)
            server.add_routes(self._app, self.state)
            admin.add_routes(self._app, self)
            auth.add_routes(self._app, self.login)
            self._app.on_startup.append(self._on_startup)
            self._app.on_cleanup.append(self._on_cleanup)
        return self._app

    async def _on_startup(self, app: web.Application) -> None:
        self.state.timers.start()

    async def _on_cleanup(self, app: web.Application) -> None:
        await self.close()

    async def close(self) -> None:
        await self._kf_close()
        await self.state.timers.close()
        await self.callbacks.close()

    @property
    def clock(self) -> Clock:
        return self.config.clock

    @property
    def records(self) -> Records:
        return self.state.records

    # --- directory and groups -------------------------------------------------------------

    def load_directory(
        self, users: Mapping[str, str], escalation: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        """users: userid -> name (the app's visible members); escalation: owner -> officers."""
        self.state.directory.load(users, escalation or {})

    def add_customer_group(
        self,
        chat_id: str,
        name: str,
        owner: str,
        member_count: int,
        quota_used: int = 0,
        *,
        notice: str = "",
        create_time: int | None = None,
        status: int = 0,
        admins: Sequence[str] = (),
    ) -> None:
        """A 客户群 owned by `owner`; quota_used = group-sends it already got this month."""
        now = self.clock.now()
        group = CustomerGroup(
            chat_id,
            name,
            owner,
            member_count,
            int(now) if create_time is None else create_time,
            notice,
            status,
            admins=tuple(admins),
        )
        if quota_used:
            group.received[month_of(now)[0]] = quota_used
        self.state.groups.add(group)

    def add_appchat(self, chat_id: str, name: str, members: Sequence[str]) -> None:
        self.state.groups.appchats[chat_id] = AppChat(chat_id, name, tuple(members))

    def add_robot(self, key: str, chat_id: str) -> None:
        self.state.groups.robots[key] = chat_id

    def group(self, chat_id: str) -> CustomerGroup | None:
        """A customer group as WeCom sees it now (None once dismissed)."""
        return self.state.groups.get(chat_id)

    # Changes made "in the client" without a callback (API-made changes send none, §3.1);
    # post_chat_event makes the same change and tells the bot.
    def dismiss_group(self, chat_id: str) -> None:
        self.state.groups.dismiss(chat_id)

    def rename_group(self, chat_id: str, name: str) -> None:
        self.state.groups.customer[chat_id].name = name

    def transfer_group(self, chat_id: str, owner: str) -> None:
        self.state.groups.transfer(chat_id, owner)

    def change_members(self, chat_id: str, delta: int) -> None:
        group = self.state.groups.customer[chat_id]
        group.member_count = max(1, group.member_count + delta)

    # --- tokens, faults, latency ----------------------------------------------------------

    def invalidate_token(self) -> None:
        """Every token issued so far answers 40014 from now on."""
        self.state.tokens.invalidate()

    def set_faults(self, *faults: FaultConfig) -> None:
        """The first config covering an API decides its faults; none: no faults."""
        self.state.faults = Faults(faults, self.config.seed)

    def set_latency(self, latency: LatencyConfig) -> None:
        self.state.latency = Latency(latency, self.config.seed)

    def hold(self, api: str) -> Hold:
        """Hold the next call of `api` (e.g. "appchat/send") before it is counted: the test
        waits for `hold.arrived`, then sets `hold.release`."""
        return self.state.holds.add(api)

    # --- callbacks to the bot -------------------------------------------------------------

    def build_text(self, from_user: str, content: str, *, msg_id: str | None = None) -> Callback:
        msg_id = msg_id or str(4 * 10**18 + self.config.seed * 10**9 + next(self._msg_ids))
        xml = payloads.text_message(
            self.config.corp_id,
            self.config.agent_id,
            from_user,
            content,
            msg_id,
            int(self.clock.now()),
        )
        return self.callbacks.build(f"text:{msg_id}", xml)

    async def deliver(self, callback: Callback, *, retries: int | None = None) -> CallbackResult:
        """POST a built callback (again): WeCom's retries and duplicate deliveries."""
        return await self.callbacks.deliver(callback, retries=retries)

    async def post_text(
        self, from_user: str, content: str, *, msg_id: str | None = None
    ) -> CallbackResult:
        """A member typed `content` to the app."""
        return await self.deliver(self.build_text(from_user, content, msg_id=msg_id))

    async def post_chat_event(
        self, chat_id: str, change_type: str, update_detail: str = "", **extra: Any
    ) -> CallbackResult:
        """change_external_chat, after making the same change to the simulator's groups.

        extra: name, owner, member_count, notice (the change itself); join_scene,
        quit_scene, mem_change_cnt, mem_change_list, last_mem_ver, cur_mem_ver (the XML).
        """
        self._apply_chat_change(chat_id, change_type, update_detail, extra)
        xml = payloads.chat_event(
            self.config.corp_id,
            chat_id,
            change_type,
            update_detail,
            int(self.clock.now()),
            **extra,
        )
        return await self.deliver(self.callbacks.build(f"chat:{chat_id}:{change_type}", xml))

    def _apply_chat_change(
        self, chat_id: str, change_type: str, detail: str, extra: dict[str, Any]
    ) -> None:
        name, owner = extra.pop("name", None), extra.pop("owner", None)
        member_count, notice = extra.pop("member_count", None), extra.pop("notice", None)
        if change_type == "create":
            self.add_customer_group(
                chat_id, name or chat_id, owner or "", member_count or 1, notice=notice or ""
            )
        elif change_type == "dismiss":
            self.dismiss_group(chat_id)
        elif detail == "change_name" and name is not None:
            self.rename_group(chat_id, name)
        elif detail == "change_owner" and owner is not None:
            self.transfer_group(chat_id, owner)
        elif detail == "change_notice" and notice is not None:
            self.state.groups.customer[chat_id].notice = notice
        elif detail in ("add_member", "del_member"):
            count = int(extra.setdefault("mem_change_cnt", 1))
            self.change_members(chat_id, count if detail == "add_member" else -count)

    async def post_contact_event(
        self,
        user_id: str,
        external_user_id: str,
        change_type: str = "add_external_contact",
        **extra: str,
    ) -> CallbackResult:
        """change_external_contact (extra: state, welcome_code)."""
        xml = payloads.contact_event(
            self.config.corp_id,
            user_id,
            external_user_id,
            change_type,
            int(self.clock.now()),
            **extra,
        )
        return await self.deliver(self.callbacks.build(f"contact:{external_user_id}", xml))

    # --- what happened --------------------------------------------------------------------

    def deliveries_to(self, chat_id: str) -> list[Delivery]:
        """Messages that reached one group, any channel, in order."""
        return [d for d in self.records.to_target(chat_id) if d.channel != "app_message"]

    def app_messages_to(self, userid: str) -> list[Delivery]:
        return self.records.to_target(userid, "app_message")

    def drops(self, reason: str | None = None) -> list[Drop]:
        return [d for d in self.records.drops if reason is None or d.reason == reason]

    def calls(self, api: str) -> int:
        """Requests received for `api` (e.g. "message/send"), answered or not."""
        return self.records.call_counts[api]

    def errors_answered(self, errcode: int, api: str | None = None) -> int:
        return self.records.errors_answered(errcode, api)

    def task(self, msgid: str) -> Task | None:
        return self.state.tasks.get(msgid)

    def tasks(self) -> list[Task]:
        return list(self.state.tasks.by_id.values())

    def owner_class(self, userid: str) -> str:
        """The confirmation class this owner drew for the run."""
        return self.state.owners.class_of(userid).name

    def stats(self) -> dict[str, Any]:
        tasks = self.state.tasks.by_id.values()
        return {
            **self.records.stats(),
            "tasks": {
                "total": len(self.state.tasks),
                "confirmed": sum(1 for t in tasks if t.status == SENT),
                "cancelled": sum(1 for t in tasks if t.cancelled),
            },
            "groups": len(self.state.groups.customer),
            "now": self.clock.now(),
        }
