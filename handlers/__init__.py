"""What the bot does with each message or event. One module per feature, one Router each.

Order matters: the first matching route wins (a handler may raise SkipHandler to pass).
"""

from __future__ import annotations

from bot import kf
from bot.router import Router
from handlers import broadcast, cases, collect, deliberation, fallback, groups, help

ROUTERS: tuple[Router, ...] = (
    kf.router,  # 微信客服 kf_msg_or_event: pull sync_msg, dispatch each KfMessage once
    groups.router,  # resident-group change events, 绑定
    broadcast.router,  # 通知 / 确认 / 批准 / 进度 / 更新 / 撤回 / 已破案 / 已转达
    deliberation.router,  # 议题 / 举手表决 / 抓阄; 微信客服 表决 (before cases: not a case)
    cases.router,  # 上报 / 我的事件 / 接单 / 答复 / 到场 / 办结 / 转交 / 事件 / 满意…
    collect.router,  # 采集 … / 我的待办 / guided collection flows
    help.router,  # 帮助 / help
    fallback.router,  # anything else: a short hint, never silence
)
