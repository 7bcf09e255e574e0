"""说事议事: village matters discussed, voted and drawn by lot in the open (issue 15).

    models.py    Matter, Voter, Tally and their enums (Body 村民会议/村民代表会议, Electorate
                 每户/每人, Rule 过半数/三分之二, Mode 网上/举手, Status)
    rules.py     quorum and passing rules of the 村民委员会组织法 (§5 of the reference)
    roll.py      the electorate: a snapshot of the village's 一标三实 person records
                 (households by address with a masked head, or adults ≥ 18)
    links.py     signed per-voter links (HMAC-SHA256, constant-time check), keyed ballot slots
    chain.py     the ballot record: canonical entries, hash chain, receipts and their proofs
    store.py     Redis: matters, roll, the cast script (one voter, one ballot, atomically), draws
    service.py   MatterService: open / appoint / vote / show of hands / status / close /
                 finalise / published / check_receipt — who may, audited
    draws.py     DrawService: create (list fixed, seed hash published) / reveal / public
                 value / run; lottery.py the deterministic HMAC-SHA256 Fisher–Yates draw
    announce.py  notices in the village's groups (broadcasts, as the officer's notice) and
                 the link sheets to grid workers
    kf.py        微信客服: a resident sends 表决 + the tails of their ID and phone numbers and
                 gets their household's (or own) link in the same conversation
    texts.py     what people read; grammar.py the chat command grammar
    jobs.py      the due-time job: opens and closes matters when due (any process, once)
    web.py       /vote/<matter>/<token> page, /vote/<matter>/sheet/<token> (grid worker),
                 /vote/<matter>/record(.json), /receipt, /draw/<id>(/verify, .json)
    cli.py       `gridbot deliberation verify-draw FILE | verify-receipt …`
    demo.py      demo steps: a small matter and a draw

Privacy: the organiser sees the roll (masked head + address) and the running turnout; ballots
sit under a keyed slot that names no voter and are counted only at closing; published entries
carry a receipt tag, never a voter. Redis keys: keys.py (one hash tag per matter / draw).
"""
