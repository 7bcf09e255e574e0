"""Callback crypto: a typed wrapper over wechatpy's WeChatCrypto (wecom.md §3.2, §4.3).

We compute msg_signature = sha1(sorted(token, timestamp, nonce, encrypt)) ourselves and compare
it in constant time (wechatpy uses `!=`) BEFORE any decryption, and we validate the base64
shape first so that garbage never reaches the cipher. The receive id embedded in the plaintext
must equal our corp id (wechatpy raises InvalidCorpIdException otherwise).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException

from bot.wecom.errors import BadSignatureError, CorpIdMismatchError, MalformedCallbackError

_BLOCK = 16


@dataclass(frozen=True, slots=True)
class Sealed:
    """An encrypted payload with its signature parameters."""

    encrypt: str
    msg_signature: str
    timestamp: str
    nonce: str

    def query(self) -> dict[str, str]:
        """Query parameters of a callback POST carrying this payload."""
        return {"msg_signature": self.msg_signature, "timestamp": self.timestamp,
                "nonce": self.nonce}

    def verify_query(self) -> dict[str, str]:
        """Query parameters of a URL-verification GET whose echostr is this payload."""
        return {**self.query(), "echostr": self.encrypt}


def sign(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """WeCom's msg_signature: sha1 over the four strings sorted and concatenated."""
    joined = "".join(sorted((token, timestamp, nonce, encrypt)))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # protocol-mandated SHA-1


class WeComCrypto:
    """Verify, decrypt and (for the simulator and tests) encrypt callback payloads."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        self._token = token
        self.corp_id = corp_id
        try:
            key = WeChatCrypto(token, encoding_aes_key, corp_id).key
        except (AssertionError, binascii.Error, ValueError) as error:
            raise ValueError("EncodingAESKey 无效") from error
        # PrpCrypto creates a fresh encryptor/decryptor per call, so one instance is reusable
        self._prp = PrpCrypto(key)

    def check_signature(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise BadSignatureError unless `signature` matches, compared in constant time."""
        expected = sign(self._token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            raise BadSignatureError()

    def verify_url(self, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """URL verification: check the signature over echostr and return its plaintext."""
        echostr = _restore_plus(echostr)
        self.check_signature(signature, timestamp, nonce, echostr)
        return self._decrypt(echostr)

    def decrypt(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Check the signature, then decrypt `encrypt` and check the corp id; plaintext XML."""
        self.check_signature(signature, timestamp, nonce, encrypt)
        return self._decrypt(encrypt)

    def encrypt(self, xml: str, nonce: str = "", timestamp: str | int = "") -> Sealed:
        """Encrypt and sign `xml` the way WeCom does (the simulator builds callbacks with it).

        `timestamp` (epoch seconds, from the caller's Clock) is required; `nonce` defaults to
        a random one."""
        if timestamp == "":
            raise ValueError("encrypt() 需要 timestamp")
        nonce = nonce or str(secrets.randbelow(10**10))
        ts = str(timestamp)
        encrypt = self._prp.encrypt(xml, self.corp_id).decode()
        return Sealed(encrypt, sign(self._token, ts, nonce, encrypt), ts, nonce)

    def callback_body(self, sealed: Sealed, agent_id: int | str) -> bytes:
        """The POST body WeCom sends: ToUserName, AgentID and Encrypt."""
        return (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<AgentID><![CDATA[{agent_id}]]></AgentID>"
            f"<Encrypt><![CDATA[{sealed.encrypt}]]></Encrypt></xml>"
        ).encode()

    def _decrypt(self, encrypt: str) -> str:
        _check_ciphertext_shape(encrypt)
        try:
            plaintext = self._prp.decrypt(encrypt, self.corp_id)
        except InvalidCorpIdException:
            raise CorpIdMismatchError() from None
        except Exception:  # any cipher/length/utf-8 failure means bad input
            raise MalformedCallbackError("密文无法解密") from None
        return str(plaintext)


def _restore_plus(value: str) -> str:
    # a raw '+' in a query string arrives decoded as a space; base64 never contains spaces
    return value.replace(" ", "+")


def _check_ciphertext_shape(encrypt: str) -> None:
    try:
        raw = base64.b64decode(encrypt, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedCallbackError("密文不是合法的 base64") from None
    if len(raw) < 2 * _BLOCK or len(raw) % _BLOCK:
        raise MalformedCallbackError("密文长度无效")
