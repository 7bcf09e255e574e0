"""Settings: TOML + GRIDBOT_<SECTION>__<KEY> overrides, one clear line per error, no secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings
from tests.conftest import ROOT, test_secrets

TOML = ROOT / "settings.toml"


def test_environment_overrides_every_documented_key() -> None:
    env = {
        **test_secrets(),
        "GRIDBOT_WECOM__API_BASE_URL": "http://10.1.2.3:9000/cgi-bin",
        "GRIDBOT_REDIS__URL": "redis://127.0.0.1:6390/2",
        "GRIDBOT_SERVER__HOST": "0.0.0.0",
        "GRIDBOT_SERVER__PORT": "9100",
    }
    s = load_settings(TOML, env)
    assert s.wecom.corp_id == env["GRIDBOT_WECOM__CORP_ID"]
    assert s.wecom.agent_id == 1000002
    assert s.wecom.api_base_url == "http://10.1.2.3:9000/cgi-bin/"
    assert s.redis.url == "redis://127.0.0.1:6390/2"
    assert (s.server.host, s.server.port) == ("0.0.0.0", 9100)
    assert s.wecom.secret.get_secret_value() == env["GRIDBOT_WECOM__SECRET"]
    assert s.broadcast.ceilings.robot_messages_per_minute == 20  # from settings.toml


def test_nested_section_override() -> None:
    env = {**test_secrets(), "GRIDBOT_BROADCAST__CEILINGS__API_CALLS_PER_MINUTE": "600"}
    assert load_settings(TOML, env).broadcast.ceilings.api_calls_per_minute == 600


@pytest.mark.parametrize(
    ("change", "key", "env_name"),
    [
        ({"GRIDBOT_WECOM__TOKEN": None}, "wecom.token", "GRIDBOT_WECOM__TOKEN"),
        ({"GRIDBOT_SERVER__PORT": "八千"}, "server.port", "GRIDBOT_SERVER__PORT"),
        ({"GRIDBOT_WECOM__ENCODING_AES_KEY": "tooshort"}, "wecom.encoding_aes_key",
         "GRIDBOT_WECOM__ENCODING_AES_KEY"),
        ({"GRIDBOT_WECOM__API_BASE_URL": "ftp://x"}, "wecom.api_base_url",
         "GRIDBOT_WECOM__API_BASE_URL"),
        ({"GRIDBOT_CLOCK__SPEED": "0"}, "clock.speed", "GRIDBOT_CLOCK__SPEED"),
    ],
)
def test_bad_value_is_one_line_naming_the_key(
    change: dict[str, str | None], key: str, env_name: str
) -> None:
    env = test_secrets()
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    with pytest.raises(SettingsError) as caught:
        load_settings(TOML, env)
    message = str(caught.value)
    assert "\n" not in message
    assert key in message and env_name in message
    for secret in ("GRIDBOT_WECOM__SECRET", "GRIDBOT_SECURITY__FIELD_KEYS"):
        assert env[secret] not in message


def test_secret_value_never_in_error_even_when_it_is_the_bad_value() -> None:
    env = test_secrets()
    env["GRIDBOT_WECOM__ENCODING_AES_KEY"] = "S3cretButWrongLength"
    with pytest.raises(SettingsError) as caught:
        load_settings(TOML, env)
    assert "S3cretButWrongLength" not in str(caught.value)


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text(TOML.read_text(encoding="utf-8") + "\n[wecom_typo]\nx = 1\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="wecom_typo"):
        load_settings(bad, test_secrets())


def test_missing_settings_file() -> None:
    with pytest.raises(SettingsError, match="找不到配置文件"):
        load_settings(ROOT / "no-such.toml", test_secrets())
