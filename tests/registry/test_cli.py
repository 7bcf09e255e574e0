"""`gridbot groups …` as an operator runs it: one process per command, the embedded Redis
(AOF in redis.data_dir) keeping the registry between them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from registry.synthetic import generate_city
from tests.bot.support import gridbot_command, gridbot_env
from tests.conftest import ROOT, test_secrets


def gridbot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = gridbot_env(
        {
            **test_secrets(),
            "GRIDBOT_REDIS__URL": "",
            "GRIDBOT_REDIS__DATA_DIR": str(tmp_path / "redis"),
        }
    )
    command = gridbot_command("--settings", str(ROOT / "settings.toml"), "groups", *args)
    return subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )


def test_synth_import_and_queries_across_processes(tmp_path: Path) -> None:
    out = gridbot(
        tmp_path,
        "synth",
        "--out",
        "city.csv",
        "--seed",
        "9",
        "--county",
        "141126",
        "--groups",
        "120",
        "--residents",
        "9600",
        "--gaps",
        "2",
    )
    assert out.returncode == 0, out.stderr
    assert "120 个群、居民 9600 人，故意留下 2 个配备缺口" in out.stdout
    files = ["city.csv", "city_people.csv", "city_nodes.csv"]  # any order: nodes go first
    out = gridbot(tmp_path, "import", *files)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        "city.csv（群，UTF-8 (BOM)）：共 120 行，导入 120 行（变更 120，未变 0），错误 0 行"
        in out.stdout
    )
    assert "忽略未知列" not in out.stdout

    stats = gridbot(tmp_path, "stats", "石楼县")
    assert stats.returncode == 0, stats.stderr
    city = generate_city(
        seed=9, counties=("141126",), total_groups=120, residents=9600, staffing_gaps=2
    )
    assert f"{'合计':<8}{120:>8}{9600:>10}" in stats.stdout
    staffing = gridbot(tmp_path, "staffing")
    assert "吕梁市：2 个网格配备不全" in staffing.stdout
    assert all(grid in staffing.stdout for grid in city.gaps)
    shown = gridbot(tmp_path, "show", city.groups[0].chat_id)
    assert "位置：吕梁市/石楼县/" in shown.stdout and "import 创建" in shown.stdout

    again = gridbot(tmp_path, "import", *files)
    assert "导入 120 行（变更 0，未变 120）" in again.stdout


def test_bad_rows_give_a_failing_exit_code_and_chinese_reasons(tmp_path: Path) -> None:
    (tmp_path / "g.csv").write_text("chat_id,name,kind\nwr1,某群,客户群\n", encoding="utf-8")
    out = gridbot(tmp_path, "import", "g.csv")
    assert out.returncode == 1 and "缺少必填列 node" in out.stdout
    out = gridbot(tmp_path, "tree", "火星")
    assert out.returncode == 1 and "找不到节点「火星」" in out.stderr
    out = gridbot(tmp_path, "synth", "--out", "x.csv", "--shares", "appchat=2")
    assert out.returncode == 2 and "占比之和必须为 1" in out.stdout
