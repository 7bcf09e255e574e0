"""Sealing short-lived queue entries (the callback inbox) at rest: AES-256-GCM.

The key is derived (HKDF-SHA256, one `purpose` per queue) from the WeCom EncodingAESKey,
the one secret every gridbot process already holds, so any process opens what another
sealed, across restarts. Each value is bound to its entry (associated data, e.g. the dedupe
key): a sealed payload moved to another entry does not open. Entries live seconds (they are
deleted once handled), so changing the EncodingAESKey in the admin console strands at most
the few entries queued at that moment (logged as invalid, never handled in clear).
Records kept for long (collect) use collect.crypto.FieldCipher and its rotating keyring.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


class SealError(ValueError):
    """A sealed value did not open (another key, tampered, or moved to another entry)."""


class Sealer:
    """seal()/open() with one derived key."""

    def __init__(self, secret: str, purpose: str) -> None:
        if not secret:
            raise ValueError("Sealer 需要非空密钥")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"gridbot seal " + purpose.encode()).derive(secret.encode())
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, bound_to: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), bound_to.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, bound_to: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], bound_to.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as error:
            raise SealError("无法解封") from error
