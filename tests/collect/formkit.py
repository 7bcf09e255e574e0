"""The bot app with the form extension, a campaign link, and a small form-filling client."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.settings import Settings
from collect import web as collect_web
from collect.campaign import Campaigns
from collect.deps import CollectDeps
from collect.models import RecordKind

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
DRAFT = re.compile(r'name="draft" value="([^"]*)"')
SECRET_FIELDS = ("id_number", "phone", "legal_rep_phone")
PERSON_FIELDS = {"name": "周小梅", "phone": "15800002222", "population_type": "常住人口",
                 "relation": "户主", "street": "振兴路", "door": "18", "building": "3",
                 "unit": "2", "room": "601"}
UNIT_FIELDS = {"unit_name": "东关农贸合作社", "legal_rep": "吴刚",
               "legal_rep_phone": "18600003333",
               "staff_count": "5", "street": "振兴路", "door": "22"}


def form_app(settings: Settings) -> web.Application:
    return create_app(settings, (), run_consumer=False, run_scheduler=False,
                      extensions=[collect_web.setup])


async def campaign_path(deps: CollectDeps, node: str, *, by: str = "p1",
                        days: float = 14) -> str:
    campaigns = Campaigns(deps)
    found = await deps.registry.node(node)
    assert found is not None
    campaign = await campaigns.open(by, found, deps.now() + days * 86400)
    link = campaigns.link(campaign, node)
    return link[link.index("/form/"):]


@dataclass
class Page:
    status: int
    text: str

    @property
    def csrf(self) -> str:
        match = CSRF.search(self.text)
        assert match, "the page has no form"
        return html.unescape(match.group(1))

    @property
    def draft(self) -> str:
        match = DRAFT.search(self.text)
        return html.unescape(match.group(1)) if match else ""

    def errors(self, field: str) -> list[str]:
        pattern = rf'<div class="(err|warn)" data-field="{field}">([^<]*)</div>'
        return [html.unescape(m.group(2)) for m in re.finditer(pattern, self.text)]


@dataclass
class FormClient:
    client: TestClient[Any, Any]
    path: str

    async def open(self, kind: RecordKind = RecordKind.PERSON) -> Page:
        async with self.client.get(self.path, params={"t": kind.value}) as resp:
            return Page(resp.status, await resp.text())

    async def submit(self, fields: dict[str, str], *, kind: RecordKind = RecordKind.PERSON,
                     csrf: str | None = None, headers: dict[str, str] | None = None,
                     path: str | None = None) -> Page:
        token = (await self.open(kind)).csrf if csrf is None else csrf
        data = {**fields, "kind": kind.value, "csrf": token}
        async with self.client.post(path or self.path, data=data, headers=headers or {}) as resp:
            return Page(resp.status, await resp.text())

    async def resubmit(self, page: Page, fields: dict[str, str], *,
                       kind: RecordKind = RecordKind.PERSON, confirm: bool = True) -> Page:
        """Send the returned page again as a browser would: the numbers were not sent back
        (the page holds a draft reference instead), so those fields go empty."""
        extra = {"confirm": "1"} if confirm else {}
        kept = {name: "" for name in SECRET_FIELDS if name in fields}
        return await self.submit({**fields, **kept, **extra, "draft": page.draft}, kind=kind,
                                 csrf=page.csrf)
