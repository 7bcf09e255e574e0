"""Signed, expiring links for the self-declaration form, and the form's CSRF value.

A link token names the campaign and the node it collects for and when it expires; it is
HMAC-SHA256 signed with a key derived from the blind-index key (never the key itself). The
form carries a CSRF value bound to that token plus a one-time nonce, so a page cannot post
into another campaign's form and one filled-in form is stored once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

CSRF_MAX_AGE = 6 * 3600.0  # a form left open longer must be reloaded


class TokenError(Exception):
    """The link is damaged, forged or expired; str(error) is shown to the resident."""


@dataclass(frozen=True, slots=True)
class Grant:
    campaign: str
    node: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, *parts: str) -> str:
    message = "\0".join(parts).encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest()[:18])


def issue(key: bytes, campaign: str, node: str, expires: float) -> str:
    body = _b64(json.dumps({"c": campaign, "n": node, "e": int(expires)},
                           separators=(",", ":")).encode())
    return f"{body}.{_mac(key, 'form', body)}"


def verify(key: bytes, token: str, now: float) -> Grant:
    body, _, sig = token.partition(".")
    if not body or not hmac.compare_digest(sig, _mac(key, "form", body)):
        raise TokenError("链接无效：请使用网格员发送的完整链接")
    try:
        raw = json.loads(_unb64(body))
        grant = Grant(str(raw["c"]), str(raw["n"]), float(raw["e"]))
    except (ValueError, KeyError, TypeError):
        raise TokenError("链接无效：请使用网格员发送的完整链接") from None
    if now > grant.expires:
        raise TokenError("链接已过期：本次采集已截止，请联系网格员")
    return grant


def digest(token: str) -> str:
    """Short stable name of a token for rate-limit keys (the token itself is not stored)."""
    return hashlib.sha256(token.encode()).hexdigest()[:24]


def csrf(key: bytes, token: str, now: float) -> str:
    issued, nonce = str(int(now)), secrets.token_urlsafe(12)
    return f"{issued}.{nonce}.{_mac(key, 'csrf', token, issued, nonce)}"


def check_csrf(key: bytes, token: str, value: str, now: float) -> str | None:
    """The nonce of a valid CSRF value for `token`, or None."""
    parts = value.split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    issued, nonce, sig = parts
    if not hmac.compare_digest(sig, _mac(key, "csrf", token, issued, nonce)):
        return None
    if not 0 <= now - int(issued) <= CSRF_MAX_AGE:
        return None
    return nonce
