"""Records over chat: dedupe, corrections with history, review, to-do, 搬离/注销, permissions."""

from __future__ import annotations

from dataclasses import replace

from bot.audit import AuditLog
from bot.clock import Clock
from collect.models import ChangeKind, ReviewState
from collect.officer import Todo, todo
from tests.collect.conftest import G02, Chat, chat_deps, template
from tests.collect.helpers import person_by_id

ID1, ID2 = "142326198811110019", "141102200506010027"


def person(number: str = ID1, phone: str = "13812345678",
           address: str = "振兴路18号3栋2单元501") -> str:
    return template("人口", name="孙丽", id=number, phone=phone, address=address, type="常住")


async def audit_of(chat: Chat, action: str) -> list[tuple[str, str, str]]:
    entries = await AuditLog(chat.ctx.redis, chat.ctx.keys, Clock()).entries(action=action)
    return [(e.actor, e.outcome, e.target) for e in entries]


async def test_the_same_person_twice_is_one_record_with_history(chat: Chat) -> None:
    first = await chat.send("w1", person())
    assert "人口记录 P1（新登记）" in first
    same = await chat.send("p1", person(address="振兴路 18 号 三栋 二单元 501 室"))
    assert "人口记录 P1（已有记录，内容无变化）" in same
    deps = chat_deps(chat)
    record = await person_by_id(deps, ID1)
    assert record is not None and record.id == "P1" and record.version == 2
    history = await deps.store.history(record.id)
    assert [(h.kind, h.actor) for h in history] == [(ChangeKind.COLLECT, "w1"),
                                                    (ChangeKind.COLLECT, "p1")]
    assert all(h.at > 0 and h.source.startswith("chat:msg:") for h in history)
    assert await deps.store.count("141181001", record.kind) == 1


async def test_moving_to_another_grid_is_an_entry_and_reindexes(chat: Chat) -> None:
    await chat.send("w1", person())
    reply = await chat.send("w2", template("人口", name="孙丽", id=ID1, phone="13912345670",
                                           address="阳光小区1号楼1单元101", type="常住"))
    assert "更新了" in reply and "联系电话" in reply
    deps = chat_deps(chat)
    record = await person_by_id(deps, ID1)
    assert record is not None and record.node == G02
    history = await deps.store.history(record.id)
    assert history[-1].kind is ChangeKind.MOVE_IN and history[-1].actor == "w2"
    changed = {c.field: (c.old, c.new) for c in history[-1].changes}
    assert changed["联系电话"] == ("138****5678", "139****5670"), "history keeps masked values"
    assert [r.id for r in (await _todo(chat, "w2")).pending] == [record.id]
    assert record.id not in [r.id for r in (await _todo(chat, "w1")).pending]


async def _todo(chat: Chat, userid: str) -> Todo:
    return await todo(chat_deps(chat), userid)


async def test_corrections_keep_who_when_why(chat: Chat) -> None:
    await chat.send("w1", person())
    await chat.send("p1", "核查 P1 通过")
    fixed = await chat.send("w1", "更正 P1 电话：13700001111 原因：本人换号")
    assert "已保存" in fixed and "137****1111" in fixed and "13700001111" not in fixed
    deps = chat_deps(chat)
    record = await deps.store.get("P1")
    assert record is not None and record.state is ReviewState.PENDING, "back to 待核查"
    entry = (await deps.store.history("P1"))[-1]
    assert (entry.kind, entry.actor, entry.reason) == (ChangeKind.CORRECT, "w1", "本人换号")
    assert [(c.field, c.old, c.new) for c in entry.changes] == [
        ("联系电话", "138****5678", "137****1111")]
    bad = await chat.send("w1", "更正 P1 电话：12345")
    assert bad.startswith("未保存") and "联系电话：" in bad
    assert "无法识别的项目" in await chat.send("w1", "更正 P1 血型：A")


async def test_correcting_the_id_number_moves_the_blind_index(chat: Chat) -> None:
    await chat.send("w1", person())
    await chat.send("w1", person(number=ID2, phone="13700001111"))
    taken = await chat.send("w1", f"更正 P1 身份证：{ID2}")
    assert "已登记在 P2" in taken
    new_id = "142326197002020043"
    fixed = await chat.send("w1", f"更正 P1 身份证：{new_id}")
    assert "已保存" in fixed and "性别" in fixed
    deps = chat_deps(chat)
    assert await person_by_id(deps, ID1) is None, "the old number no longer finds the record"
    record = await person_by_id(deps, new_id)
    assert record is not None and record.id == "P1" and record.fields["sex"] == "女"


async def test_review_and_todo(chat: Chat) -> None:
    await chat.send("w1", person())
    await chat.send("w1", person(number=ID2, phone="13700001111"))
    listing = await chat.send("w1", "我的待办")
    assert "待核查 2 条" in listing and "P1" in listing and "P2" in listing and "孙*" in listing
    assert "已核查" in await chat.send("p1", "核查 P1 通过")
    returned = await chat.send("a1", "核查 P2 退回 门牌号有误")
    assert "退回" in returned
    listing = await chat.send("w1", "我的待办")
    assert "待核查 0 条，退回 1 条" in listing and "原因：门牌号有误" in listing
    assert "请写明原因" in await chat.send("p1", "核查 P2 退回")
    assert "仅限民警或辅警" in await chat.send("w1", "核查 P2 通过")
    assert "不在您负责的区域" in await chat.send("p2", "核查 P2 通过")
    refused = [a for a in await audit_of(chat, "collect.review") if a[1] == "refused"]
    assert {(actor, target) for actor, _, target in refused} == {("w1", "P2"), ("p2", "P2")}


async def test_collecting_is_limited_to_covered_nodes(chat: Chat) -> None:
    outside = await chat.send("w2", template("人口", name="孙丽", id=ID1, phone="13812345678",
                                             address="东关一网格/振兴路18号", type="常住"))
    assert "不在您负责的区域内" in outside
    assert "仅限网格员、民警或辅警" in await chat.send("stranger", person())
    far = await chat.send("w3", template("人口", name="孙丽", id=ID1, phone="13812345678",
                                         address="孝义市/东关一网格/振兴路18号", type="常住"))
    assert "不在您负责的区域内" in far
    assert await person_by_id(chat_deps(chat), ID1) is None
    refused = await audit_of(chat, "collect.submit")
    assert {(a, o) for a, o, _ in refused} == {("w2", "refused"), ("stranger", "refused"),
                                               ("w3", "refused")}
    ok = await chat.send("p1", template("人口", name="孙丽", id=ID1, phone="13812345678",
                                        address="东关二网格/阳光小区1号楼", type="常住"))
    assert ok.startswith("已保存"), "an officer collects anywhere in his township"


async def test_houses_units_and_addresses(chat: Chat) -> None:
    await chat.send("w1", person())
    house = await chat.send("w1", template("房屋", address="振兴路18号3栋2单元501",
                                           usage="住宅", occupancy="出租", owner="周大福",
                                           owner_id=ID2, tenants=f"P1，{ID1}"))
    assert house.startswith("已保存：房屋记录 H1") and "周**" in house and "承租人：P1" in house
    unknown = await chat.send("w1", template("房屋", address="振兴路18号3栋2单元502",
                                             usage="住宅", occupancy="出租", owner="周大福",
                                             tenants="14118120100101003X"))
    assert "尚未登记为实有人口" in unknown and "1411**********003X" in unknown
    first = await chat.send("w1", template("地址", address="振兴路18号3栋2单元503"))
    again = await chat.send("w1", "采集 地址\n街路巷：振兴路\n门牌：18\n楼栋：三\n"
                                  "单元：2\n户室：0503")
    assert "地址记录 A" in first and first.split("地址记录 ")[1][:3] == again.split(
        "地址记录 ")[1][:3], "one canonical key: the same address record"
    assert "内容无变化" in again


async def test_move_out_and_cancel(chat: Chat) -> None:
    await chat.send("w1", person())
    assert "状态：搬离" in await chat.send("w1", "搬离 P1 已迁往太原")
    entry = (await chat_deps(chat).store.history("P1"))[-1]
    assert (entry.kind, entry.reason) == (ChangeKind.MOVE_OUT, "已迁往太原")
    assert "只适用于人口记录" in await chat.send("w1", "搬离 A1 拆迁")
    assert "状态：注销" in await chat.send("w1", "注销 P1 重复登记")
    assert "找不到 P99" in await chat.send("w1", "注销 P99 重复")


async def test_repeated_input_is_answered(chat: Chat) -> None:
    """WeCom drops identical messages within 30 min: replies carry their time."""
    fast = Chat(replace(chat.ctx, clock=Clock(speed=50.0)), chat.sim, chat.leaks)
    bad = template("人口", name="孙丽", id="360426199101010072", phone="13812345678",
                   address="振兴路18号", type="常住")
    first = await fast.send("w1", bad)
    await fast.ctx.clock.sleep(2.0)
    second = await fast.send("w1", bad)
    assert first != second
    assert len(chat.sim.app_messages_to("w1")) == 2 and not chat.sim.drops("duplicate")

