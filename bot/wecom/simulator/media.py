"""Temporary media (residents_console_votes.md §3): what members and residents send as photos
(served by bot.wecom.simulator.api_media). A media_id lives 3 days."""

from __future__ import annotations

import secrets
import struct
import zlib
from dataclasses import dataclass, field

from bot.wecom.simulator import errors
from bot.wecom.simulator.errors import SimError

LIFETIME = 3 * 86400.0


@dataclass(frozen=True, slots=True)
class Media:
    data: bytes
    content_type: str
    filename: str
    created_at: float


@dataclass(slots=True)
class MediaStore:
    items: dict[str, Media] = field(default_factory=dict)

    def put(self, data: bytes, content_type: str, filename: str, now: float) -> str:
        media_id = "3" + secrets.token_urlsafe(40)
        self.items[media_id] = Media(data, content_type, filename, now)
        return media_id

    def get(self, media_id: str, now: float) -> Media:
        if not media_id:
            raise SimError(errors.MISSING_MEDIA_ID)
        found = self.items.get(media_id)
        if found is None or now - found.created_at > LIFETIME:
            raise SimError(errors.INVALID_MEDIA_ID)
        return found


def sample_png(seed: int = 0, size: int = 8) -> bytes:
    """A small valid PNG, different per seed (a "photo" when a test brings none)."""
    shade = seed % 256
    rows = b"".join(b"\x00" + bytes((shade, (shade * 7) % 256, 128)) * size
                    for _ in range(size))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

