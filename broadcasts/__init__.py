"""Police notices that reach every targeted resident group within ten minutes.

Commands (app chat: handlers/broadcast.py; CLI: `gridbot broadcast …`; HTTP: api.py) go
through service.BroadcastService, which checks who may (民警 inside their subtree; see its
docstring), audits every command and refusal, plans the notice and shows the planner's
forecast before anything reaches more than `broadcast.confirm_threshold_groups` groups.

    grammar.py    the Chinese command grammar (通知 / 定时 / 更新 / 撤回 / 已破案 …)
    targets.py    names, paths and codes → tree codes and exclusions
    plan.py       the frozen plan: groups with path, owner task, grid police, supervisors
    planner.py    cost against WeCom's ceilings: machine_floor (also printed by the bench),
                  polling budget, quota, the reasons the deadline cannot be met
    costs.py      which ceilings each WeCom call spends; limiter.py the Redis sliding-window
                  limiter (one Lua script, all ceilings at once, shared by the whole fleet)
    state.py      per-pair and per-owner-task state, changed only by one compare-and-set
                  script: planned → submitted → awaiting_owner → delivered | failed | late |
                  uncertain (+ skipped for follow-ups); `submitted` is written before a send
    queue.py      Redis stream + consumer group + sorted set of due work
    engine.py     release(), the `start` job, 撤回's withdrawal, the dispatch table
    sending.py    appchat / webhook jobs; customer.py owner tasks and their reconciliation;
                  tracking.py owner messages, status polls, reminders; escalation.py the
                  grid police, then the township supervisor
    outbox.py     every message to a person (escalations, reminders, approval requests,
                  corrections) as a durable `tell` job: retried, each attempt recorded,
                  a lost one named in the final report
    progress.py   live progress and the roll-up per tree level; report.py deadline and
                  final reports to the issuing officer (a fact, or 未能核实; 【更正】 when
                  WeCom later says otherwise; 【进度报告】 before a notice settles)
    sweep.py      every minute of a sending notice: pairs a restart left behind (stale
                  planned/submitted, a job gone from the stream) get their job again
    validate.py   fields checked before anything is stored (time, links, API body)
    worker.py     `gridbot worker` (any number of processes); embedded.py the same in serve;
                  both back off and reconnect while Redis is away (bot.health)
    schedule.py   定时 through bot.scheduler; fire_scheduled is the scheduler job function
    quota.py      customer groups' monthly quota; apikeys.py the HTTP API's keys
    keys.py       every Redis key (hash tag per notice, `{bcq}` queue, `{rl}` limiter)

Time is simulated (bot.clock): every duration in settings is simulated seconds, and tests
and the benchmark run the same code sped up.
"""
