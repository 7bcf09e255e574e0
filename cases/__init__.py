"""事件 and 线索: problems, requests, clues and disputes on one node, with clocks and outcomes.

Map:
    models.py    Case, Entry (timeline), CaseView; kinds, categories, statuses, dispute words
    keys.py      every Redis key (a case's keys share `{case:<n>}`; clocks `{casedue:<s>}`)
    store.py     CaseStore: create / get / optimistic update / indexes per node and officer
    classify.py  category and urgency suggested from the words of a report
    routing.py   the node's police, grid worker(s), and the supervisors escalations reach
    access.py    who may see and who may act (pure rules)
    service.py   CaseService: every command, audited (ok and refused); Refused, BadInput
    clocks.py    due times in sharded sorted sets, claimed once with a lease; ClockRunner
    escalate.py  what a due clock does: township supervisor, then county
    embedded.py  the clocks inside `gridbot serve`
    notify.py    1:1 app messages to members
    assess.py    考核 figures per node and per officer; CSV and XLSX
    deps.py      CasesDeps, built once per process
    kfsend.py    answers to residents inside 微信客服's rules; relay to the grid worker
    residents.py ResidentDesk: residents' 微信客服 messages → cases, clues, ratings
    texts.py     what people read
    cli.py       `gridbot cases …`
    demo.py      the demo's case steps

Assessment (考核) formulas — the 12345 references give no official formula
(residents_console_votes.md §4), so these are settings-backed choices, per case received in
the window [from, to) at a node (its subtree) or held by an officer (who accepted it):
* 响应率 = cases whose first response (接单, 答复 or 到场) came within the urgency's limit
  (`cases.respond_urgent_seconds` 300 s, `respond_normal_seconds` 1800 s) / cases received.
  Chosen as 12345's 响应率 (signed for within the limit), not the share ever answered.
* 及时办结率 = closed within `close_urgent_seconds` (24 h) / `close_normal_seconds` (7 days)
  of receipt / cases closed — the 按期办结率 convention (closed on time among closed).
* 解决率 = closed cases not rated 不满意 and, for disputes, not 未成功 / cases closed. The
  reference's 解决率 is from 回访 answers; we have the rating and the mediation outcome only.
* 满意率 = (满意 + `basic_satisfied_weight` × 基本满意) / rated cases; weight 1.0 by default
  (基本满意 counted as satisfied, as most 12345 bulletins report it); set 0.5 to be stricter.
* median / p90 first response: seconds from receipt to first response, over responded cases.
* 网格化解率 = disputes closed with settle level 网格 and outcome 调解成功 / disputes closed.
A rate is None when its denominator is zero (shown as "—"), never 0 or 100 %.

Benchmark (bench/cases.py, 2026-12-04, real time `--speed 1`, synthetic 吕梁市: 9,331 nodes,
4,398 grid workers, 2,593 police; 60 % worker reports, 40 % residents via 微信客服; shared
2-core machine at load average 8–12): 10,000 cases in 10.0 min = 997 cases/min sustained;
message → officer's 1:1 notice p50 55 ms, p99 2.7 s; 3,009 clocks fired, error against due
time median 0.11 s, p99 3.1 s, max 7.1 s (goal 5 s; the max is over it under that load);
794 escalation notices; peak RSS 170 MB (bot, simulator and city in one process).
"""
