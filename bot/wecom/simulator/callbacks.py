"""WeCom → bot callbacks: build the plaintext XML, encrypt and sign it, POST it with retries.

As WeCom does (wecom.md §3.1): the answer must come within 5 s with HTTP 200, otherwise the
same request is sent again, up to three more times. A Callback is built once and may be
delivered any number of times (dedupe tests).
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field

import aiohttp

from bot.clock import Clock
from bot.wecom.crypto import WeComCrypto
from bot.wecom.simulator.config import SimConfig
from bot.wecom.simulator.records import CallbackAttempt, Records

_ENVELOPE = re.compile(
    r"<(Encrypt|MsgSignature|TimeStamp|Nonce)>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</"
)


def cdata(text: str) -> str:
    """A CDATA section that survives a "]]>" inside the text."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


class Raw(str):
    """An XML fragment inserted as is (nested elements such as MemChangeList)."""


def xml_message(fields: list[tuple[str, str | int]]) -> str:
    """<xml> with strings in CDATA and numbers and Raw fragments bare, WeCom's layout."""
    parts = [
        f"<{name}>{value if isinstance(value, int | Raw) else cdata(value)}</{name}>"
        for name, value in fields
    ]
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass(frozen=True, slots=True)
class Callback:
    """One encrypted callback request, ready to POST (and to POST again)."""

    label: str
    plaintext: str
    query: dict[str, str]
    body: str


@dataclass(slots=True)
class CallbackResult:
    callback: Callback
    attempts: list[CallbackAttempt] = field(default_factory=list)
    reply: str = ""  # the decrypted passive reply, if the bot sent one

    @property
    def ok(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].status == 200


class CallbackPoster:
    def __init__(self, config: SimConfig, records: Records) -> None:
        self._config = config
        self._clock: Clock = config.clock
        self._records = records
        self._rng = random.Random(f"{config.seed}:callbacks")
        self._session: aiohttp.ClientSession | None = None
        self._crypto: WeComCrypto | None = None

    @property
    def crypto(self) -> WeComCrypto:
        if self._crypto is None:
            if not self._config.token or len(self._config.encoding_aes_key) != 43:
                raise RuntimeError("SimConfig needs token and a 43-char encoding_aes_key")
            self._crypto = WeComCrypto(
                self._config.token, self._config.encoding_aes_key, self._config.corp_id
            )
        return self._crypto

    def build(self, label: str, plaintext: str) -> Callback:
        """Encrypt and sign `plaintext` as WeCom does for a POST to the callback URL."""
        nonce = str(self._rng.randrange(10**9, 10**10))
        sealed = self.crypto.encrypt(plaintext, nonce, int(self._clock.now()))
        body = self.crypto.callback_body(sealed, self._config.agent_id).decode()
        return Callback(label, plaintext, sealed.query(), body)

    async def deliver(self, callback: Callback, *, retries: int | None = None) -> CallbackResult:
        """POST until HTTP 200 or the retries are spent; every attempt is recorded."""
        result = CallbackResult(callback)
        tries = 1 + (self._config.callback_retries if retries is None else retries)
        for attempt in range(tries):
            if attempt and self._config.callback_retry_delay:
                await self._clock.sleep(self._config.callback_retry_delay)
            status, text = await self._attempt(callback, result)
            if status == 200:
                result.reply = self._decrypt_reply(text)
                break
        return result

    async def _attempt(self, callback: Callback, result: CallbackResult) -> tuple[int | None, str]:
        if not self._config.callback_url:
            raise RuntimeError("SimConfig.callback_url is not set")
        started, at = time.monotonic(), self._clock.now()
        status, text, error = None, "", ""
        try:
            async with self._http().post(
                self._config.callback_url,
                params=callback.query,
                data=callback.body.encode(),
                headers={"Content-Type": "text/xml"},
                timeout=self._timeout(),
            ) as response:
                status, text = response.status, await response.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            error = type(exc).__name__
        attempt = CallbackAttempt(callback.label, at, status, error, time.monotonic() - started)
        result.attempts.append(attempt)
        self._records.callback_attempts.append(attempt)
        return status, text

    def _timeout(self) -> aiohttp.ClientTimeout:
        real = self._clock.real(self._config.callback_timeout)
        return aiohttp.ClientTimeout(total=max(real, self._config.callback_min_real_timeout))

    def _decrypt_reply(self, text: str) -> str:
        if not text.strip():
            return ""
        envelope = dict(_ENVELOPE.findall(text))
        try:
            return self.crypto.decrypt(
                envelope.get("MsgSignature", ""),
                envelope.get("TimeStamp", ""),
                envelope.get("Nonce", ""),
                envelope["Encrypt"],
            )
        except Exception:  # WeCom shows the member nothing for a reply it cannot verify
            return ""

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
