"""Signed voting links: one per voter, bound to the matter, checked in constant time.

A link token is ``<vid>.<mac>`` where mac = HMAC-SHA256(key, "vote" ‖ matter ‖ vid), first 18
bytes, base64url. The key is derived from the blind-index key (BlindIndex.subkey), never the
key itself. The matter is in the URL path and inside the MAC, so a link of one matter (or
village) never opens another. Grid workers get a sheet link bound to (matter, grid, userid).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_VID = re.compile(r"^[0-9a-f]{16}$")


class LinkError(Exception):
    """str(error) is shown to the resident."""


def _mac(key: bytes, *parts: str) -> str:
    digest = hmac.new(key, "\0".join(parts).encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def vote_token(key: bytes, matter: str, vid: str) -> str:
    return f"{vid}.{_mac(key, 'vote', matter, vid)}"


def check_vote(key: bytes, matter: str, token: str) -> str:
    """The voter id of a valid token for `matter`; LinkError otherwise."""
    vid, _, sig = token.partition(".")
    if len(token) > 80 or not _VID.match(vid) or \
            not hmac.compare_digest(sig.encode(), _mac(key, "vote", matter, vid).encode()):
        raise LinkError("链接无效：请使用网格员转发给您的完整表决链接，不要改动")
    return vid


def slot(key: bytes, matter: str, vid: str) -> str:
    """Where this voter's ballot is stored: names no voter without the server key."""
    return hmac.new(key, f"slot\0{matter}\0{vid}".encode(), hashlib.sha256).hexdigest()[:32]


def who(key: bytes, matter: str, record_id: str) -> str:
    """Where the vid of a household (address id) or person (record id) is filed."""
    return hmac.new(key, f"who\0{matter}\0{record_id}".encode(), hashlib.sha256).hexdigest()[:32]


def sheet_token(key: bytes, matter: str, grid: str, userid: str) -> str:
    body = base64.urlsafe_b64encode(f"{grid}\0{userid}".encode()).decode().rstrip("=")
    return f"{body}.{_mac(key, 'sheet', matter, grid, userid)}"


def check_sheet(key: bytes, matter: str, token: str) -> tuple[str, str]:
    body, _, sig = token.partition(".")
    try:
        grid, _, userid = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode() \
            .partition("\0")
    except (ValueError, UnicodeDecodeError):
        raise LinkError("链接无效") from None
    if len(token) > 200 or not hmac.compare_digest(
            sig.encode(), _mac(key, "sheet", matter, grid, userid).encode()):
        raise LinkError("链接无效")
    return grid, userid


def csrf(key: bytes, matter: str, token: str) -> str:
    return _mac(key, "csrf", matter, token)


def check_csrf(key: bytes, matter: str, token: str, value: str) -> bool:
    return hmac.compare_digest(value.encode(), csrf(key, matter, token).encode())
