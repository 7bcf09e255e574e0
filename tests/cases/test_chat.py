"""Grid workers report, police take, answer, go on site and close — through the routers and
the WeCom simulator; refusals and bad input change nothing and are audited."""

from __future__ import annotations

from bot.audit import AuditLog
from bot.events import ImageMessage, LocationMessage
from cases.models import Category, Status, Urgency
from tests.cases.conftest import G01, Chat


async def _report(chat: Chat, text: str = "3号楼消防通道堆满杂物，防火门被锁") -> str:
    reply = await chat.send("w1", f"上报 {text}")
    assert "已上报，编号 E" in reply, reply
    return reply.split("编号 ")[1].split("（")[0]


async def test_report_routes_to_grid_police_and_reporter_sees_who(chat: Chat) -> None:
    reply = await chat.send("w1", "上报 3号楼消防通道堆满杂物，防火门被锁")
    assert "E1" in reply and "消防安全·一般" in reply
    assert "民警甲" in reply and "辅警甲" in reply  # who holds it now
    for officer in ("p1", "a1"):
        assert any("【新事件 E1】" in m and "防火门" in m for m in chat.messages_to(officer))
    assert not chat.messages_to("p2") and not chat.messages_to("w3")
    case = await chat.deps.store.get("E1")
    assert case is not None and case.node == G01 and case.grid_workers == ("w1",)
    assert case.category is Category.FIRE and case.urgency is Urgency.NORMAL


async def test_category_and_urgency_are_suggested_and_corrected(chat: Chat) -> None:
    number = await _report(chat, "有人正在打架，有人受伤")
    case = await chat.deps.store.get(number)
    assert case is not None and case.urgency is Urgency.URGENT
    assert case.category is Category.DISPUTE
    assert "已更正" in await chat.send("w1", f"类别 {number} 治安")
    assert "已更正" in await chat.send("p1", f"类别 {number} 一般")
    case = await chat.deps.store.get(number)
    assert case is not None and case.category is Category.SECURITY
    assert case.urgency is Urgency.NORMAL
    assert case.respond_due == case.created_at + 1800


async def test_officer_takes_answers_arrives_closes_and_reporter_rates(chat: Chat) -> None:
    number = await _report(chat)
    assert "已接单" in await chat.send("p1", f"接单 {number}")
    assert any("已由 民警甲（民警） 接单" in m for m in chat.messages_to("w1"))
    assert "答复已发给上报人" in await chat.send("p1", f"答复 {number} 已联系物业，下午清理")
    assert any(f"【事件 {number} 答复】已联系物业" in m for m in chat.messages_to("w1"))
    assert "已记录到场" in await chat.send("p1", f"到场 {number}")
    assert "已办结" in await chat.send("p1", f"办结 {number} 杂物已清理，防火门已打开")
    assert any("请评价" in m for m in chat.messages_to("w1"))
    assert "感谢评价" in await chat.send("w1", "满意")
    case = await chat.deps.store.get(number)
    assert case is not None and case.status is Status.CLOSED and case.satisfaction == "满意"
    assert case.accepted_by == "p1" and case.arrived_at >= case.accepted_at > 0
    timeline = await chat.send("p1", f"事件 {number}")
    for word in ("上报", "接单", "答复", "到场", "办结", "评价"):
        assert word in timeline


async def test_dissatisfied_reopens_for_the_supervisors_callback(chat: Chat) -> None:
    number = await _report(chat)
    await chat.send("p1", f"办结 {number} 已处理")
    assert "已转负责人回访" in await chat.send("w1", "不满意")
    case = await chat.deps.store.get(number)
    assert case is not None and case.status is Status.REOPENED and case.handler == "s1"
    assert any(f"【回访 {number}】" in m for m in chat.messages_to("s1"))
    assert "已办结" in await chat.send("s1", f"办结 {number} 回访后重新清理，居民认可")
    assert "感谢评价" in await chat.send("w1", "基本满意")


async def test_dispute_settled_in_the_grid(chat: Chat) -> None:
    number = await _report(chat, "邻里纠纷：楼上漏水，两户争吵")
    assert "已登记当事人：张*、李**" in await chat.send("p1", f"当事人 {number} 张三 李四四")
    assert "已转交" in await chat.send("p1", f"转交 {number} 调解")
    assert any(f"【事件 {number} 转人民调解】" in m for m in chat.messages_to("w1"))
    assert "已办结" in await chat.send("w1", f"办结 {number} 调解成功 网格 人民调解 赔偿维修")
    case = await chat.deps.store.get(number)
    assert case is not None and case.settle_level == "网格" and case.outcome == "调解成功"
    assert case.route == "人民调解" and case.parties == ("张*", "李**")
    assert "张三" not in (await chat.redis_text(number))


async def test_outsiders_are_refused_and_audited(chat: Chat) -> None:
    number = await _report(chat)
    for who in ("stranger", "w3", "w2", "p2"):
        reply = await chat.send(who, f"事件 {number}")
        assert "无权" in reply and "防火门" not in reply, (who, reply)
        assert "无权" in await chat.send(who, f"接单 {number}")
    assert "无权处理" in await chat.send("w1", f"接单 {number}")  # the reporter sees, not acts
    refused = [e for e in await AuditLog(chat.ctx.redis, chat.ctx.keys, chat.ctx.clock).entries()
               if e.outcome == "refused"]
    assert {e.actor for e in refused} >= {"stranger", "w3", "w2", "p2", "w1"}
    case = await chat.deps.store.get(number)
    assert case is not None and case.status is Status.NEW and not case.handler


async def test_bad_input_answers_in_chinese_and_changes_nothing(chat: Chat) -> None:
    assert "请写明事件内容" in await chat.send("w1", "上报")
    assert "请写明事件内容" in await chat.send("w1", "上报   ")
    huge = "上报 " + "楼道堆物" * 2_500_000  # 10 MB of text
    assert "消息过长" in await chat.send("w1", huge)
    assert "过长" in await chat.send("w1", "上报 " + "楼" * 1500)
    assert "没有找到事件 E999" in await chat.send("p1", "接单 E999")
    assert "没有找到事件" in await chat.send("p1", "答复 XYZ 你好")
    assert await chat.ctx.redis.get(chat.deps.keys.seq()) is None  # no case was made
    number = await _report(chat)
    assert "没有找到事件" in await chat.send("p2", f"办结 {number} 完成")  # not yours
    case = await chat.deps.store.get(number)
    assert case is not None and case.status is Status.NEW
    assert "已接单" in await chat.send("p1", f"接单 {number}")
    assert "无需重复接单" in await chat.send("a1", f"接单 {number}")


async def test_photo_and_location_join_the_report(chat: Chat) -> None:
    number = await _report(chat)
    reply = await chat.event(ImageMessage(sender="w1", create_time=1, media_id="MEDIA1",
                                          msg_id="i1"))
    assert f"已将照片（共 1 张）附在事件 {number}" in reply
    reply = await chat.event(LocationMessage(sender="w1", create_time=2, latitude=37.1,
                                             longitude=111.8, label="东关街3号楼", msg_id="l1"))
    assert f"附在事件 {number}" in reply
    case = await chat.deps.store.get(number)
    assert case is not None and case.photos == ("MEDIA1",) and "东关街3号楼" in case.location
    view = await chat.send("p1", f"事件 {number}")
    assert "照片：1 张" in view and "东关街3号楼" in view


async def test_photo_with_no_case_open_is_answered_and_not_kept(chat: Chat) -> None:
    reply = await chat.event(ImageMessage(sender="w2", create_time=1, media_id="M2",
                                          msg_id="i2"))
    assert "没有正在上报的事件，照片未保存" in reply
    assert await chat.ctx.redis.get(chat.deps.keys.seq()) is None
