"""Field encryption at rest (AES-256-GCM / SM4-GCM), binding to record and field, key
rotation without downtime, and the keyed blind index."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from bot.audit import AuditLog
from bot.clock import Clock
from bot.keys import Keys
from bot.settings import Settings, SettingsError
from collect.crypto import BlindIndex, FieldCipher, FieldCryptoError, parse_keyring
from collect.deps import CollectDeps
from collect.records import reveal
from collect.rotate import rotate
from registry.store import Registry
from tests.bot.support import gridbot_command, gridbot_env
from tests.collect.conftest import Chat, chat_deps, template
from tests.collect.data import SECRETS

ID = "142326198811110019"


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.mark.parametrize("cipher", ["aes-256-gcm", "sm4-gcm"])
def test_seal_binds_value_to_record_and_field(cipher: str) -> None:
    box = FieldCipher(parse_keyring(f"k1:{key()}"), cipher)
    sealed = box.seal(ID, "P1", "id_number")
    assert ID not in sealed and sealed.startswith(f"v1:k1:{cipher[0]}:")
    assert box.seal(ID, "P1", "id_number") != sealed, "a fresh nonce every time"
    assert box.open(sealed, "P1", "id_number") == ID
    for record, field in (("P2", "id_number"), ("P1", "phone")):
        with pytest.raises(FieldCryptoError):
            box.open(sealed, record, field)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(FieldCryptoError):
        box.open(flipped, "P1", "id_number")
    with pytest.raises(FieldCryptoError):
        FieldCipher(parse_keyring(f"k1:{key()}"), cipher).open(sealed, "P1", "id_number")


def test_keyring_errors_never_echo_the_key() -> None:
    short = base64.b64encode(b"x" * 16).decode()
    for spec in ("", "nokid", f"k1:{short}", "k1:***", f"bad kid:{key()}"):
        with pytest.raises(SettingsError) as error:
            parse_keyring(spec)
        assert str(error.value).startswith("配置错误 security.field_keys")
        assert short not in str(error.value)


def test_blind_index_is_keyed_and_deterministic() -> None:
    one, two = BlindIndex(os.urandom(32)), BlindIndex(os.urandom(32))
    assert one.digest("id", ID) == one.digest("id", ID)
    assert one.digest("id", ID) != two.digest("id", ID)
    assert one.digest("id", ID) != one.digest("phone", ID)
    assert ID not in one.digest("id", ID) and len(one.digest("id", ID)) == 32
    assert one.subkey("form-token") != one.key


async def _dump(redis: aioredis.Redis) -> str:
    """Every key and value in the database, as text."""
    parts: list[object] = []
    async for name in redis.scan_iter(count=500):
        kind = await redis.type(name)
        parts.append(name)
        if kind == "string":
            parts.append(await redis.get(name))
        elif kind == "hash":
            parts.append(await redis.hgetall(name))
        elif kind == "list":
            parts.append(await redis.lrange(name, 0, -1))
        elif kind == "set":
            parts.append(await redis.smembers(name))
        elif kind == "zset":
            parts.append(await redis.zrange(name, 0, -1))
        elif kind == "stream":
            parts.append(await redis.xrange(name))
    return "\n".join(str(p) for p in parts)


async def test_nothing_personal_is_stored_in_clear(chat: Chat, redis: aioredis.Redis) -> None:
    await chat.send("w1", template("人口", name="冯晓", id=ID, phone="13812345678",
                                   address="振兴路18号3栋2单元501", type="常住"))
    await chat.send("w1", "采集 人口")  # a flow session holding an answer, too
    await chat.send("w1", "冯晓")
    await chat.send("w1", "141102199503010018")
    held = await chat.send("w2", template("人口", name="冯晓", id="810000199408230021",
                                          phone="13912345670", address="阳光小区1号楼101",
                                          type="境外"))
    assert "确认保存" in held, "a submission waiting for 确认 is held sealed, too"
    dump = await _dump(redis)
    for secret in (*SECRETS, "冯晓"):
        assert secret not in dump, "personal data must be sealed at rest"


def settings_with(make_settings: Callable[..., Settings], settings: Settings,
                  keys_spec: str, cipher: str = "aes-256-gcm") -> Settings:
    security = settings.security.model_copy(update={
        "field_keys": type(settings.security.field_keys)(keys_spec), "cipher": cipher})
    return settings.model_copy(update={"security": security})


async def test_key_rotation_without_downtime(chat: Chat, redis: aioredis.Redis, keys: Keys,
                                             clock: Clock, make_settings: Callable[..., Settings],
                                             redis_url: str) -> None:
    for number, phone in ((ID, "13812345678"), ("141102200506010027", "13912345670")):
        await chat.send("w1", template("人口", name="冯晓", id=number, phone=phone,
                                       address="振兴路18号3栋2单元501", type="常住"))
    old = chat.ctx.settings
    old_spec = old.security.field_keys.get_secret_value()
    registry = Registry(redis, keys, clock)

    def deps_for(spec: str, cipher: str = "aes-256-gcm") -> CollectDeps:
        new = settings_with(make_settings, old, spec, cipher)
        return CollectDeps.build(redis, keys, clock, new, registry, AuditLog(redis, keys, clock))

    both = deps_for(f"k2:{key()},{old_spec}", "sm4-gcm")
    record = await both.store.get("P1")
    assert record is not None and reveal(record, both.cipher)["id_number"] == ID
    report = await rotate(both, batch=1)
    # P1, P2 and their address A1 (nothing sealed); SCAN may repeat a key, never skip one
    assert report.scanned >= 3 and (report.rewritten, report.conflicts) == (2, 0)
    assert (await rotate(both)).rewritten == 0, "a second pass finds nothing stale"
    new_spec = both.settings.security.field_keys.get_secret_value().split(",")[0]
    only_new = deps_for(new_spec, "sm4-gcm")
    for record_id in ("P1", "P2"):
        record = await only_new.store.get(record_id)
        assert record is not None and all(v.startswith("v1:k2:s:") for v in
                                          record.sealed.values())
        assert reveal(record, only_new.cipher)["name"] == "冯晓"
    with pytest.raises(FieldCryptoError):
        record = await chat_deps(chat).store.get("P1")
        assert record is not None
        reveal(record, chat_deps(chat).cipher)
    env = gridbot_env({
        "GRIDBOT_REDIS__URL": redis_url, "GRIDBOT_WECOM__CORP_ID": "ww1",
        "GRIDBOT_WECOM__SECRET": "x", "GRIDBOT_WECOM__AGENT_ID": "1",
        "GRIDBOT_WECOM__TOKEN": "t", "GRIDBOT_WECOM__ENCODING_AES_KEY": "a" * 43,
        "GRIDBOT_SECURITY__FIELD_KEYS": f"k3:{key()},{new_spec}",
        "GRIDBOT_SECURITY__BLIND_INDEX_KEY": old.security.blind_index_key.get_secret_value()})
    done = await asyncio.to_thread(
        subprocess.run, gridbot_command("collect", "rotate-keys"), env=env, text=True,
        capture_output=True, timeout=60, check=False)
    assert done.returncode == 0 and "重新加密 2 条" in done.stdout, done.stderr
    raw = await redis.get(keys.k("collect", "{P1}", "rec"))
    assert '"v1:k3:a:' in str(raw)
