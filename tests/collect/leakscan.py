"""Leak scan: no full ID number or mobile number in text a user, a log or an error shows.

Reusable by any test: `find_leaks(text, secrets)` lists every secret found (also with
spaces/dashes inside, or as the digits of +86 numbers) plus anything shaped like a full
18-digit ID or 11-digit mobile that is not masked. `assert_no_leaks(named_texts, secrets)`
fails with where each leak was, never printing the secret itself in full.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.masking import mask_id_number, mask_phone

ID_SHAPE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
MOBILE_SHAPE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_SEPARATORS = re.compile(r"[\s\-]")


def _masked(value: str) -> str:
    return mask_phone(value) if len(value) == 11 else mask_id_number(value)


def find_leaks(text: str, secrets: Iterable[str] = ()) -> list[str]:
    """Masked forms of the secrets and number shapes found in `text` (empty: clean)."""
    squeezed = _SEPARATORS.sub("", text)
    found = [_masked(s) for s in secrets if s and (s in text or s in squeezed)]
    shapes = [*ID_SHAPE.findall(text), *MOBILE_SHAPE.findall(text)]
    found += [f"形如号码:{_masked(s)}" for s in shapes]
    return sorted(set(found))


def assert_no_leaks(named_texts: Iterable[tuple[str, str]], secrets: Iterable[str] = ()) -> None:
    """`named_texts`: (where, text) pairs, e.g. ("reply to w1", "...")."""
    wanted = tuple(secrets)
    problems = [f"{where}: {', '.join(leaks)}" for where, text in named_texts
                if (leaks := find_leaks(text, wanted))]
    assert not problems, "完整号码泄露:\n" + "\n".join(problems)
