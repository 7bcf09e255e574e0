"""The three published crypto vectors (wecom.md §3.3) through the running /wecom/callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.events import TextMessage
from bot.settings import Settings
from bot.wecom.crypto import WeComCrypto
from tests.bot.support import FixedClock, recording_router, seen_events, wait_until

ClientFactory = Callable[..., Any]


@dataclass(frozen=True)
class Vector:
    token: str
    aes_key: str
    corp_id: str
    verify: tuple[str, str, str, str]  # signature, timestamp, nonce, echostr
    echo_plaintext: str
    message: tuple[str, str, str, str]  # signature, timestamp, nonce, body
    sender: str
    content: str
    msg_id: str
    agent_id: int


A = Vector(
    "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7",
    ("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
     "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="),
    "1616140317555161061",
    ("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149",
     "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQ"
     "KFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W"
     "/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxA"
     "UHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v"
     "+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6B"
     "pNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+"
     "qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"),
    "mycreate", "hello", "4561255354251345929", 218,
)

B = Vector(
    "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    "ww1436e0e65a779aee",
    ("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683",
     "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="),
    "1288432023552776189",
    ("0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914",
     "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA[Kl7kjoSf6D"
     "MD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNsh"
     "w2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU"
     "0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0c"
     "RX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmn"
     "KiypE+]]></Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"),
    "ChenJiaShun", "你好", "1456453720", 1000002,
)

C = Vector(
    "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a",
    ("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425",
     "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="),
    "5927782489442352469",
    ("74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294",
     "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName><Encrypt><![CDATA[RgqEoJj5A4EM"
     "YlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283"
     "dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx4"
     "10cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2"
     "SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x"
     "6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=]]></Encrypt><AgentID>1</AgentID></xml>"),
    "messense", "test", "4363689963896700987", 1,
)
VECTORS = {"A-doc-sample": A, "B-python-sample": B, "C-wechatpy": C}


def vector_settings(make_settings: Callable[..., Settings], v: Vector) -> Settings:
    return make_settings({"GRIDBOT_WECOM__CORP_ID": v.corp_id, "GRIDBOT_WECOM__TOKEN": v.token,
                          "GRIDBOT_WECOM__ENCODING_AES_KEY": v.aes_key})


async def bot_at(aiohttp_client: ClientFactory, settings: Settings, timestamp: str) -> TestClient:
    app = create_app(settings, [recording_router()], clock=FixedClock(at=float(timestamp) + 5),
                     run_scheduler=False)
    client: TestClient = await aiohttp_client(app)
    return client


@pytest.mark.parametrize("v", VECTORS.values(), ids=VECTORS.keys())
async def test_url_verification_returns_exact_plaintext(
    v: Vector, aiohttp_client: ClientFactory, make_settings: Callable[..., Settings]
) -> None:
    signature, timestamp, nonce, echostr = v.verify
    client = await bot_at(aiohttp_client, vector_settings(make_settings, v), timestamp)
    response = await client.get("/wecom/callback", params={
        "msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": echostr})
    assert response.status == 200
    assert await response.read() == v.echo_plaintext.encode()
    assert response.content_type == "text/plain"


async def test_url_verification_with_the_documented_url_encoding(
    aiohttp_client: ClientFactory, make_settings: Callable[..., Settings]
) -> None:
    signature, timestamp, nonce, _ = A.verify
    client = await bot_at(aiohttp_client, vector_settings(make_settings, A), timestamp)
    encoded = ("P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7"
               "OaBO%2BFZXvnaqQ%3D%3D")
    url = (f"/wecom/callback?msg_signature={signature}&timestamp={timestamp}&nonce={nonce}"
           f"&echostr={encoded}")
    response = await client.get(url)
    assert (response.status, await response.text()) == (200, A.echo_plaintext)


async def test_vector_c_wrong_nonce_is_refused(
    aiohttp_client: ClientFactory, make_settings: Callable[..., Settings]
) -> None:
    signature, timestamp, _, echostr = C.verify
    client = await bot_at(aiohttp_client, vector_settings(make_settings, C), timestamp)
    response = await client.get("/wecom/callback", params={
        "msg_signature": signature, "timestamp": timestamp, "nonce": "437374424",
        "echostr": echostr})
    assert response.status == 403
    assert C.echo_plaintext not in await response.text()


@pytest.mark.parametrize("v", VECTORS.values(), ids=VECTORS.keys())
async def test_sample_message_decrypts_and_reaches_a_handler(
    v: Vector, aiohttp_client: ClientFactory, make_settings: Callable[..., Settings],
    redis: aioredis.Redis,
) -> None:
    signature, timestamp, nonce, body = v.message
    client = await bot_at(aiohttp_client, vector_settings(make_settings, v), timestamp)
    response = await client.post("/wecom/callback", data=body.encode(), params={
        "msg_signature": signature, "timestamp": timestamp, "nonce": nonce})
    assert response.status == 200
    assert await response.read() == b""

    async def arrived() -> bool:
        return bool(await seen_events(redis))

    await wait_until(arrived, what="the handler")
    [event] = await seen_events(redis)
    assert event == TextMessage(sender=v.sender, create_time=int(timestamp), agent_id=v.agent_id,
                                content=v.content, msg_id=v.msg_id)


def test_encrypt_reproduces_wechatpy_reference_vector() -> None:
    """Vector C's encrypt step: with wechatpy's fixed randomness, the published ciphertext."""
    crypto = WeComCrypto(C.token, C.aes_key, C.corp_id)
    crypto._prp.get_random_string = lambda: "1234567890123456"  # the reference test's random
    reply = ("<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
             "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
             "<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n"
             "<CreateTime>1411525903</CreateTime>\n</xml>")
    sealed = crypto.encrypt(reply, "461056294", "1411525903")
    assert sealed.msg_signature == "407518b7649e86ef23978113f92d27afa9296533"
    assert sealed.encrypt.startswith("9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hh")
    assert sealed.encrypt.endswith("GVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3")
    assert crypto.decrypt(sealed.msg_signature, "1411525903", "461056294", sealed.encrypt) == reply
