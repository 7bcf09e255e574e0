"""CSV / XLSX import: good rows written, each bad row reported with its line, idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from registry.importer import Importer, ImportResult
from registry.models import DeliveryKind, Role
from registry.placement import Placer
from registry.store import Registry

RULE = "{county}-{township}-{village}-{building}"
SAMPLE = Path(__file__).resolve().parents[2] / "registry" / "sample"
HEADER = "chat_id,name,kind,node,owner,member_count,webhook_key,tags"
MIXED = [
    HEADER,
    # 2 ok
    "wr01,孝义市-新义街道-东关社区-1号楼,customer_group,141181001001-G01-B001,gw1,86,,楼栋",
    "wr02,某群,customer_group,141181001001-G07-B001,gw1,10,,",  # 3 unknown node
    "wr03,某群,customer_group,14118A,gw1,10,,",  # 4 malformed code
    # 5 duplicate of line 2
    "wr01,孝义市-新义街道-东关社区-1号楼,customer_group,141181001001-G01-B001,gw1,86,,楼栋",
    "wr04,某群,微信群,141181001001,gw1,10,,",  # 6 wrong kind
    "wr05,某群,customer_group,141181001001,gw1,很多,,",  # 7 bad member count
    "wr06,某群,客户群,141181001001,gw1,600,,",  # 8 over the 客户群 ceiling
    "wb07,某群,webhook,141181001001,gw1,10,,",  # 9 robot without key
    "wr08,某群,customer_group,141181001001,,10,,",  # 10 customer group without owner
    "ac09,孝义市-新义街道-东关社区-3号楼,应用群聊,141181001001-G02-B003,gw2,1500.0,,楼栋",  # 11 ok
    "wr10,孝义市-梧桐镇-下堡村,customer_group,,gw3,200,,村",  # 12 ok, placed by the rule
    "wr11,东关社区老年活动群,customer_group,,gw1,38,,",  # 13 ok, left unplaced
]


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def importer(registry: Registry) -> Importer:
    return Importer(registry, Placer(registry, RULE))


def reasons(result: ImportResult) -> dict[int, str]:
    return {e.line: e.reason for e in result.errors}


async def test_good_rows_are_imported_and_each_bad_row_reported(
    tree: Registry, tmp_path: Path
) -> None:
    result = await importer(tree).import_file(write(tmp_path / "groups.csv", MIXED))
    bad = reasons(result)
    assert sorted(bad) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "找不到节点「141181001001-G07-B001」" in bad[3]
    assert "格式不正确" in bad[4]
    assert "与第 2 行重复" in bad[5]
    assert "类型「微信群」不正确" in bad[6]
    assert "成员数「很多」不是整数" in bad[7]
    assert "超过客户群上限 500" in bad[8]
    assert "机器人key" in bad[9]
    assert "群主" in bad[10]
    assert (result.rows, result.changed, result.unchanged, result.unplaced) == (12, 4, 0, 1)
    assert not result.ok and "第 7 行" in result.report()
    groups = {g.chat_id: g for g in await tree.all_groups()}
    assert sorted(groups) == ["ac09", "wr01", "wr10", "wr11"]
    assert groups["ac09"].kind is DeliveryKind.APPCHAT and groups["ac09"].member_count == 1500
    assert groups["wr10"].node == "141181101201"  # the naming rule placed it
    assert [u.chat_id for u in await tree.unplaced()] == ["wr11"]
    assert await tree.breakdown("141181") == {
        DeliveryKind.CUSTOMER_GROUP: 2,
        DeliveryKind.APPCHAT: 1,
        DeliveryKind.WEBHOOK: 0,
    }


async def test_importing_the_same_file_again_changes_nothing(
    tree: Registry, tmp_path: Path
) -> None:
    path = write(tmp_path / "groups.csv", MIXED)
    await importer(tree).import_file(path)
    before = await tree.dump()
    again = await importer(tree).import_file(path)
    assert (again.changed, again.unchanged) == (0, 4)
    assert await tree.dump() == before
    assert [h.what for h in await tree.history("wr01")] == ["created"]


async def test_missing_columns_are_named_and_nothing_is_written(
    tree: Registry, tmp_path: Path
) -> None:
    path = write(tmp_path / "g.csv", ["chat_id,name,owner", "wr01,某群,gw1"])
    result = await importer(tree).import_file(path)
    assert result.missing_columns == ("kind", "node")
    assert "缺少必填列 kind、node" in result.report()
    assert await tree.all_groups() == []


async def test_gbk_file_from_excel_is_decoded(tree: Registry, tmp_path: Path) -> None:
    lines = [
        "群ID,群名称,类型,节点编码,群主,成员数",
        "wr01,孝义市-新义街道-东关社区-1号楼,客户群,141181001001-G01-B001,gw1,86",
        "wr02,孝义市-梧桐镇-下堡村,客户群,141181101201,gw3,abc",
    ]
    path = write(tmp_path / "excel.csv", lines, "gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # really not UTF-8
    result = await importer(tree).import_file(path)
    assert result.encoding == "GBK/GB18030"
    assert result.changed == 1 and reasons(result) == {3: "成员数「abc」不是整数"}
    stored = await tree.group("wr01")
    assert stored is not None and stored.name == "孝义市-新义街道-东关社区-1号楼"


async def test_utf16_tab_separated_and_bom_files(tree: Registry, tmp_path: Path) -> None:
    rows = [
        "chat_id\tname\tkind\tnode\towner",
        "wr01\t一号楼群\tcustomer_group\t141181001001-G01-B001\tgw1",
    ]
    result = await importer(tree).import_file(write(tmp_path / "u16.txt", rows, "utf-16"))
    assert (result.encoding, result.changed) == ("UTF-16", 1)
    bom = write(tmp_path / "bom.csv", [HEADER, MIXED[1]], "utf-8-sig")
    result = await importer(tree).import_file(bom)
    assert (result.encoding, result.ok) == ("UTF-8 (BOM)", True)


async def test_undecodable_file_is_reported(tree: Registry, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(HEADER.encode() + b"\n\xff\xfe\xff\xff,x\n")
    result = await importer(tree).import_file(path, "groups")
    assert "无法识别文件编码" in result.failure and not result.ok


async def test_conflicting_duplicates_are_both_rejected(tree: Registry, tmp_path: Path) -> None:
    lines = [HEADER, MIXED[1], MIXED[1].replace(",86,", ",87,")]
    result = await importer(tree).import_file(write(tmp_path / "dup.csv", lines))
    assert sorted(reasons(result)) == [2, 3]
    assert "内容不一致" in reasons(result)[2]
    assert await tree.all_groups() == []


async def test_xlsx_import(tree: Registry, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["群ID", "群名称", "类型", "节点编码", "群主", "成员数", "标签"])
    sheet.append(
        [
            "wr01",
            "孝义市-新义街道-东关社区-1号楼",
            "客户群",
            "141181001001-G01-B001",
            "gw1",
            86,
            "楼栋",
        ]
    )
    sheet.append(
        [
            "wr02",
            "孝义市-新义街道-东关社区-2号楼",
            "客户群",
            "141181001001-G01-B002",
            "gw1",
            12.0,
            None,
        ]
    )
    sheet.append([None, None, None, None, None, None, None])
    sheet.append(["wr03", "某群", "客户群", "141181001001-G01-B404", "gw1", 5, None])
    path = tmp_path / "groups.xlsx"
    book.save(path)
    result = await importer(tree).import_file(path)
    assert result.encoding == "XLSX" and result.changed == 2
    assert list(reasons(result)) == [5]
    stored = await tree.group("wr02")
    assert stored is not None and stored.member_count == 12


async def test_nodes_and_people_files(registry: Registry, tmp_path: Path) -> None:
    nodes = write(
        tmp_path / "nodes.csv",
        [
            "编码,名称,层级,上级编码,城市社区",
            "141100,吕梁市,市,,否",
            "141181,孝义市,县区,,否",
            "141181001,新义街道,乡镇,,否",  # bad level
            "141181001001,东关社区,村社区,,是",  # its parent row is bad
            "141181101,梧桐镇,乡镇街道,,否",
            "141181101201,下堡村,,,否",
        ],
    )
    result = await importer(registry).import_file(nodes)
    assert result.kind == "nodes" and result.changed == 4
    assert sorted(reasons(result)) == [4, 5]
    assert "上级节点「141181001」所在行有错误" in reasons(result)[5]
    people = write(
        tmp_path / "people.csv",
        [
            "userid,姓名,角色,负责节点",
            "mj1,李建国,民警,141181101201",
            "gw1,王芳,网格长,141181101201",  # unknown role
            "gw2,刘洋,网格员,141181101201;141181999201",  # unknown node
        ],
    )
    result = await importer(registry).import_file(people)
    assert result.kind == "people" and result.changed == 1
    assert sorted(reasons(result)) == [3, 4]
    person = await registry.person("mj1")
    assert person is not None and person.role is Role.OFFICER


async def test_shipped_sample_imports_cleanly(registry: Registry) -> None:
    imp = importer(registry)
    results = [
        await imp.import_file(SAMPLE / name)
        for name in ("groups_sample_nodes.csv", "groups_sample_people.csv", "groups_sample.csv")
    ]
    assert all(r.ok for r in results), [r.report() for r in results]
    assert [r.changed for r in results] == [12, 11, 7]
    assert await registry.breakdown("141181") == {
        DeliveryKind.CUSTOMER_GROUP: 4,
        DeliveryKind.APPCHAT: 1,
        DeliveryKind.WEBHOOK: 1,
    }
    assert [u.chat_id for u in await registry.unplaced()] == ["wrSampleUnplaced0001"]
