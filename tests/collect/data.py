"""Test data: the fact sheet's vectors (yibiao_sanshi.md §2) with the outcome GridBot gives.

accept: stored as is; warn: stored only after 确认保存 / the form's confirm box;
checksum: refused until 确认无误 (override); refuse: never stored.
"""

from __future__ import annotations

ID_VECTORS: tuple[tuple[str, str, str], ...] = (
    # valid vectors
    ("11010519491231002X", "accept", "GB 11643 example (北京朝阳)"),
    ("440524188001010014", "warn", "valid checksum; 440524 (潮阳县) only 1983–1993, born 1880"),
    ("360426199101010071", "accept", "python-stdnum test vector"),
    ("44011320141005001X", "accept", "python-stdnum test vector"),
    ("120103198806018241", "accept", "stdnum-js test vector"),
    # invalid vectors
    ("360426199101010072", "refuse", "checksum"),
    ("36042619910102009X", "refuse", "checksum"),
    ("360426199113010079", "refuse", "month 13"),
    ("990426199112010074", "refuse", "no province 99"),
    ("141102200502300019", "refuse", "Feb 30 with a correct checksum"),
    # Lüliang examples and stdnum pitfalls
    ("141121198001010020", "warn", "141121 (文水县) only from 2003; stdnum 2.2 rejects it"),
    ("142326197506150044", "accept", "old 临县 code, valid in 1975"),
    ("141102199503010018", "warn", "离石区 code 2003, born 1995 (late registration)"),
    ("142331199003010015", "accept", "离石县, valid in 1990"),
    ("810000199408230021", "warn", "香港居民居住证"),
    ("830000199201300022", "warn", "台湾居民居住证"),
)

USCC_VECTORS: tuple[tuple[str, str, str], ...] = (
    ("91110000600037341L", "accept", "python-stdnum doc"),
    ("91110108551385082Q", "accept", "小米科技"),
    ("121200004013590816", "accept", "python-stdnum test (事业单位)"),
    ("91310115MA1K3BTP2B", "accept", "python-stdnum test"),
    ("91110000600037341N", "checksum", "checksum"),
    ("N2141124MA0K12345K", "accept", "村级集体经济组织; stdnum's validate rejects it"),
    ("91350100M000100Y4Z", "refuse", "published worked example: Z cannot occur"),
    ("91350100M000100Y43", "accept", "the corrected worked example"),
    ("91350211M0000XUF46", "checksum", "real code reported failing its checksum"),
)

# more valid, checksum-correct Lüliang numbers for distinct test people
PEOPLE_IDS = ("142326198811110019", "141102200506010027", "14118120100101003X",
              "142326197002020043", "141102200808080055", "142326196606060068")
PHONES = ("13812345678", "19212345678", "16612345678", "17400012345", "13912345670",
          "13700001111", "15800002222", "18600003333", "14912345678")
# every full number the collect tests type in: none may appear in a reply, log or error
SECRETS = tuple(v for v, _, _ in ID_VECTORS) + PEOPLE_IDS + PHONES
