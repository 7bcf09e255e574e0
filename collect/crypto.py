"""Field-level encryption of personal data at rest, and the keyed blind index for lookups.

* AES-256-GCM by default, SM4-GCM (密评 deployments) when settings.security.cipher = "sm4-gcm".
* Keys come from settings.security.field_keys = "kid:base64,kid2:base64": the first encrypts, all
  decrypt, so keys rotate without downtime (`gridbot collect rotate-keys` re-encrypts records).
* Each value is bound to its record id and field by the associated data: a ciphertext copied to
  another record or field does not decrypt.
* Sealed values are "v1:<kid>:<a|s>:<base64url(nonce|ciphertext|tag)>": the key id and cipher
  travel with the value, so switching cipher or key never strands old data.
* The blind index is HMAC-SHA256 under settings.security.blind_index_key over the normalised
  value: equal numbers give equal digests (dedupe, lookup) without storing the number.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.settings import SecuritySettings, SettingsError

_KID = re.compile(r"^[A-Za-z0-9_.-]{1,16}$")
_ALGS = {"aes-256-gcm": "a", "sm4-gcm": "s"}
_NONCE = 12
_TAG = 16


class FieldCryptoError(Exception):
    """A sealed value could not be opened (wrong key, tampered, or moved to another field)."""


def _derive(material: bytes, alg: str) -> bytes:
    # one configured key serves both ciphers without ever using the same bytes for both
    length = 32 if alg == "a" else 16
    info = b"gridbot field key " + alg.encode()
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(material)


def parse_keyring(spec: str) -> list[tuple[str, bytes]]:
    """'k1:base64,k2:base64' -> [(kid, 32-byte material)]; the first is the write key."""
    ring: list[tuple[str, bytes]] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        kid, sep, encoded = item.partition(":")
        if not sep or not _KID.match(kid):
            raise SettingsError("配置错误 security.field_keys: 每个密钥应写作 kid:base64，"
                                "kid 为字母数字；请检查环境变量 GRIDBOT_SECURITY__FIELD_KEYS")
        try:
            material = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SettingsError(f"配置错误 security.field_keys: 密钥 {kid} 不是有效的 base64"
                                ) from None
        if len(material) != 32:
            raise SettingsError(f"配置错误 security.field_keys: 密钥 {kid} 应为32字节（base64 "
                                "编码后44个字符）")
        ring.append((kid, material))
    if not ring:
        raise SettingsError("配置错误 security.field_keys: 未设置字段加密密钥；请设置环境变量 "
                            "GRIDBOT_SECURITY__FIELD_KEYS（格式 kid:base64密钥）")
    return ring


class FieldCipher:
    """Seals and opens single field values with associated data binding record id and field."""

    def __init__(self, keyring: list[tuple[str, bytes]], cipher: str = "aes-256-gcm") -> None:
        self._alg = _ALGS[cipher]
        self._spec = (list(keyring), cipher)
        self._primary = keyring[0][0]
        self._keys = {(kid, alg): _derive(material, alg)
                      for kid, material in keyring for alg in _ALGS.values()}
        # built once: an export opens millions of values, and building one costs a key setup
        self._gcm = {kid_alg: AESGCM(key) for kid_alg, key in self._keys.items()
                     if kid_alg[1] == "a"}
        self._by_head = {f"v1:{kid}:{alg}": gcm for (kid, alg), gcm in self._gcm.items()}

    @classmethod
    def from_settings(cls, security: SecuritySettings) -> FieldCipher:
        return cls(parse_keyring(security.field_keys.get_secret_value()), security.cipher)

    def __reduce__(self) -> tuple[type[FieldCipher], tuple[list[tuple[str, bytes]], str]]:
        # an export's worker processes get the cipher through their start-up pipe (memory
        # to memory, never stored); the AESGCM objects are rebuilt there
        return FieldCipher, self._spec

    @property
    def primary(self) -> str:
        return self._primary

    def seal(self, plaintext: str, record_id: str, field: str) -> str:
        nonce = os.urandom(_NONCE)
        key = self._keys[(self._primary, self._alg)]
        body = _encrypt(self._alg, key, nonce, plaintext.encode(), _aad(record_id, field))
        encoded = base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")
        return f"v1:{self._primary}:{self._alg}:{encoded}"

    def open(self, sealed: str, record_id: str, field: str) -> str:
        try:
            version, kid, alg, encoded = sealed.split(":", 3)
            key = self._keys[(kid, alg)]
            blob = _unb64(encoded)
        except (ValueError, KeyError, binascii.Error):
            raise FieldCryptoError(f"无法解密字段 {field}：密钥标识未知或数据格式错误") from None
        if version != "v1":
            raise FieldCryptoError(f"无法解密字段 {field}：未知的数据版本")
        try:
            aad = _aad(record_id, field)
            gcm = self._gcm.get((kid, alg))
            plain = (gcm.decrypt(blob[:_NONCE], blob[_NONCE:], aad) if gcm is not None
                     else _decrypt(alg, key, blob[:_NONCE], blob[_NONCE:], aad))
        except InvalidTag:
            raise FieldCryptoError(f"无法解密字段 {field}：校验失败（密钥不符或数据被篡改）"
                                   ) from None
        return plain.decode()

    def open_all(self, sealed: Mapping[str, str], record_id: str) -> dict[str, str]:
        """Every value of `sealed` opened, as `open` would (which it falls back to for SM4 and
        for errors), without its per-value set-up: an export opens millions of values."""
        out: dict[str, str] = {}
        by_head, prefix = self._by_head, f"gridbot-collect|{record_id}|"
        for field, value in sealed.items():
            head, _, encoded = value.rpartition(":")  # base64url holds no ':'
            aead = by_head.get(head)
            try:
                if aead is None:
                    raise ValueError(head)
                blob = binascii.a2b_base64(encoded.replace("-", "+").replace("_", "/")
                                           + _PAD[len(encoded) & 3], strict_mode=True)
                out[field] = aead.decrypt(blob[:_NONCE], blob[_NONCE:],
                                          (prefix + field).encode()).decode()
            except (ValueError, binascii.Error, InvalidTag):
                out[field] = self.open(value, record_id, field)  # SM4, or the error
        return out

    def is_current(self, sealed: str) -> bool:
        """True when `sealed` already uses the write key and the configured cipher."""
        return sealed.startswith(f"v1:{self._primary}:{self._alg}:")


_PAD = ("", "===", "==", "=")  # by len % 4 (1 is never valid: a2b_base64 says so)


def _unb64(encoded: str) -> bytes:
    # binascii directly: base64.urlsafe_b64decode's Python wrappers (and str.translate) cost
    # more than the AES itself, and an export opens millions of values
    standard = encoded.replace("-", "+").replace("_", "/")
    return binascii.a2b_base64(standard + "=" * (-len(encoded) % 4), strict_mode=True)


def _aad(record_id: str, field: str) -> bytes:
    return f"gridbot-collect|{record_id}|{field}".encode()


def _encrypt(alg: str, key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    if alg == "a":
        return AESGCM(key).encrypt(nonce, data, aad)
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    return encryptor.update(data) + encryptor.finalize() + encryptor.tag


def _decrypt(alg: str, key: bytes, nonce: bytes, body: bytes, aad: bytes) -> bytes:
    if alg == "a":
        return AESGCM(key).decrypt(nonce, body, aad)
    if len(body) < _TAG:
        raise InvalidTag
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, body[-_TAG:])).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(body[:-_TAG]) + decryptor.finalize()


@dataclass(frozen=True, slots=True)
class BlindIndex:
    """Keyed digests of normalised values; also derives the form-token signing key."""

    key: bytes

    @classmethod
    def from_settings(cls, security: SecuritySettings) -> BlindIndex:
        raw = security.blind_index_key.get_secret_value()
        try:
            key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) < 16:
            raise SettingsError("配置错误 security.blind_index_key: 未设置或不足16字节；请设置环境"
                                "变量 GRIDBOT_SECURITY__BLIND_INDEX_KEY（base64）")
        return cls(key)

    def digest(self, kind: str, normalised: str) -> str:
        mac = hmac.new(self.key, f"{kind}\0{normalised}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def subkey(self, purpose: str) -> bytes:
        """A key for another purpose (form tokens), independent of the index digests."""
        return hmac.new(self.key, b"gridbot subkey\0" + purpose.encode(), hashlib.sha256).digest()
