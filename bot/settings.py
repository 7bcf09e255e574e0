"""Settings: settings.toml, overridden by GRIDBOT_<SECTION>__<KEY> environment variables.

Validated once at start-up. A wrong or missing value raises SettingsError whose message is one
line naming the key and how to set it; secret values are never part of that message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.redis import cluster_url, is_cluster_url

DEFAULT_SETTINGS_PATH = Path("settings.toml")


class SettingsError(Exception):
    """Invalid configuration; str(error) is a single line fit for an operator."""


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = ""  # base URL residents' phones reach (self-declaration form links)


class WeComSettings(BaseModel):
    corp_id: str = Field(min_length=1, max_length=64)
    secret: SecretStr
    agent_id: int = Field(ge=0)
    token: SecretStr
    encoding_aes_key: SecretStr
    api_base_url: str = "https://qyapi.weixin.qq.com/cgi-bin/"
    request_timeout: float = Field(10.0, gt=0, le=120)
    connect_timeout: float = Field(3.0, gt=0, le=60)
    max_block_wait: float = Field(65.0, ge=0, le=3600)  # longest 45009 window waited inline
    max_concurrency: int = Field(64, ge=1, le=1024)

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) != 43:
            raise ValueError("EncodingAESKey 必须是 43 个字符")
        return value

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not 1 <= len(value.get_secret_value()) <= 32:
            raise ValueError("Token 长度必须为 1–32 个字符")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("必须以 http:// 或 https:// 开头")
        return value if value.endswith("/") else value + "/"


class RedisSettings(BaseModel):
    url: str = ""  # empty: start the embedded redis-server
    cluster: bool = False  # url names one node of a Redis Cluster (same as redis+cluster://)
    data_dir: Path = Path("data/redis")
    prefix: str = Field("gridbot", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    # the embedded server's AOF fsync policy: "always" makes every write acknowledged to WeCom
    # (200 on a callback) survive a power loss too; "everysec" may lose the last second then
    # (a killed redis-server loses nothing: its writes are in the OS already)
    appendfsync: Literal["always", "everysec", "no"] = "always"
    # a long-running loop that cannot reach Redis for this long (real seconds) ends the
    # process with a non-zero exit, for its supervisor to restart it
    give_up_seconds: float = Field(300.0, gt=0)
    # replicas that must have a broadcast's "submitted" record before the send (Redis WAIT);
    # unset: 1 on a cluster slot that has a replica, 0 (no WAIT, no extra cost) otherwise
    wait_replicas: int | None = Field(None, ge=0, le=5)
    wait_timeout_ms: int = Field(1000, gt=0, le=60000)  # no ack by then: the send is held

    @model_validator(mode="after")
    def _cluster_url(self) -> RedisSettings:
        """Carry cluster mode in the URL itself: every process and CLI gets it from there."""
        if self.cluster and not self.url:
            raise ValueError("redis.cluster = true 需要 redis.url 指向集群中任一节点")
        if self.cluster:
            self.url = cluster_url(self.url)
        self.cluster = is_cluster_url(self.url)
        return self


class CallbackSettings(BaseModel):
    path: str = "/wecom/callback"
    timestamp_window: int = Field(300, ge=10, le=86400)
    max_body_bytes: int = Field(256 * 1024, ge=1024, le=16 * 1024 * 1024)
    dedupe_ttl: int = Field(7 * 86400, ge=60)
    # pending inbox entries idle longer than this belong to a dead process and are taken over
    claim_idle_seconds: float = Field(15.0, gt=0)
    handler_concurrency: int = Field(32, ge=1, le=1024)


class ClockSettings(BaseModel):
    speed: float = Field(1.0, gt=0, le=1000)  # >1 only for the demo, tests and benchmarks
    origin: float = 0.0  # real epoch where simulated time equals real time; shared by processes


class CeilingSettings(BaseModel):
    """WeCom's published ceilings (wecom.md §1–§2); the planner and the limiter read these."""

    api_calls_per_minute: int = Field(10_000, ge=1)
    api_calls_per_hour: int = Field(150_000, ge=1)
    appchat_person_times_per_minute: int = Field(20_000, ge=1)
    appchat_person_times_per_hour: int = Field(150_000, ge=1)
    robot_messages_per_minute: int = Field(20, ge=1)
    member_app_messages_per_minute: int = Field(30, ge=1)
    chat_ids_per_task: int = Field(2000, ge=1, le=2000)
    reminders_per_day: int = Field(3, ge=0)
    block_seconds_minute: int = Field(60, ge=1)
    block_seconds_hour: int = Field(3600, ge=1)


class BroadcastSettings(BaseModel):
    deadline_seconds: int = Field(600, ge=60)
    confirm_threshold_groups: int = Field(20, ge=0)
    two_person_approval: bool = True
    retry_delays: list[float] = Field(default_factory=lambda: [5.0, 30.0, 120.0])
    remind_after_seconds: int = Field(120, ge=0)
    escalate_officer_after_seconds: int = Field(240, ge=0)
    escalate_supervisor_after_seconds: int = Field(420, ge=0)
    poll_interval_seconds: float = Field(20.0, gt=0)
    poll_budget_share: float = Field(0.4, gt=0, le=1)  # share of an API's minute ceiling
    worker_concurrency: int = Field(48, ge=1, le=1024)
    claim_idle_seconds: float = Field(5.0, gt=0)  # a dead worker's jobs are taken over after this
    # how often a sending notice looks for pairs a restart left behind (broadcasts/sweep.py)
    sweep_interval_seconds: float = Field(60.0, gt=0)
    max_schedule_ahead_days: int = Field(30, ge=1, le=366)  # 定时 at most this far ahead
    api_key_days: float = Field(90.0, gt=0)  # an HTTP API key's life unless asked otherwise
    api_key_max_days: float = Field(365.0, gt=0)  # the longest life a key may be given
    embedded_worker: bool = True  # `gridbot serve` also delivers; add `gridbot worker`s to scale
    ceilings: CeilingSettings = Field(default_factory=CeilingSettings)


class RegistrySettings(BaseModel):
    naming_rule: str = "{county}-{township}-{village}-{building}"
    sync_page_size: int = Field(1000, ge=1, le=1000)
    # decoded packs each process keeps (registry/packcache.py): ~500 B of memory per group
    max_cached_groups: int = Field(250_000, ge=0, le=5_000_000)
    warm_cache_on_start: bool = True  # read the whole tree once in the background at start


class SecuritySettings(BaseModel):
    # "kid:base64key,kid2:base64key"; the first is used for new writes, all decrypt (rotation)
    field_keys: SecretStr = SecretStr("")
    blind_index_key: SecretStr = SecretStr("")
    cipher: Literal["aes-256-gcm", "sm4-gcm"] = "aes-256-gcm"
    audit_retention_days: int = Field(190, ge=180)  # NSL art. 21: at least six months


class CollectSettings(BaseModel):
    max_reasks: int = Field(3, ge=1, le=10)
    session_ttl_seconds: int = Field(3 * 86400, ge=60)
    form_token_ttl_seconds: int = Field(14 * 86400, ge=60)
    reminder_interval_minutes: int = Field(24 * 60, ge=1)
    # processes making a large export's rows (collect/exportpool.py): None = one per core,
    # 0 = in the exporting process; rows made there first, before any process starts
    export_workers: int | None = Field(None, ge=0, le=64)
    export_inline_rows: int = Field(50_000, ge=0)


class CasesSettings(BaseModel):
    """事件 (cases/): clocks and the assessment's formulas; see cases/__init__.py."""

    respond_urgent_seconds: int = Field(5 * 60, ge=30)  # 紧急: 接单 due within 5 min
    respond_normal_seconds: int = Field(30 * 60, ge=60)  # 一般: within 30 min
    escalate_county_after_seconds: int = Field(0, ge=0)  # 0: one more response limit
    close_urgent_seconds: int = Field(24 * 3600, ge=60)  # 及时办结: 紧急 within 24 h
    close_normal_seconds: int = Field(7 * 86400, ge=60)  # 一般 within 7 days
    attach_window_seconds: int = Field(10 * 60, ge=30)  # photos/location join the last report
    max_text_chars: int = Field(1000, ge=10, le=10_000)
    basic_satisfied_weight: float = Field(1.0, ge=0, le=1)  # 基本满意 counted as this much 满意
    clock_shards: int = Field(8, ge=1, le=256)
    clock_poll_seconds: float = Field(0.2, gt=0, le=10)  # real seconds between clock scans
    clock_lease_seconds: float = Field(120.0, gt=0)  # a claimed clock a dead process held
    open_kfid: str = ""  # the 微信客服 account residents reach; "" = the first listed
    embedded_clocks: bool = True  # `gridbot serve` runs the clocks (any number may)


class ConsoleSettings(BaseModel):
    """The officers' web console (console/): member login and sessions."""

    # WeCom's OAuth page (inside the WeCom client) and QR login page (desktop browsers);
    # tests and the demo point both at the simulator
    oauth_url: str = "https://open.weixin.qq.com/connect/oauth2/authorize"
    qr_login_url: str = "https://login.work.weixin.qq.com/wwlogin/sso/login"
    idle_minutes: int = Field(30, ge=1, le=24 * 60)  # real minutes without a request
    max_hours: int = Field(12, ge=1, le=72)  # absolute lifetime of a session (real hours)
    # Secure cookies need https; only for http://127.0.0.1 (tests, demo) may this be false
    secure_cookies: bool = True


class KfSettings(BaseModel):
    """微信客服 intake (bot.kf): pulling sync_msg pages after each kf_msg_or_event."""

    # real seconds one process holds an account's pull before another may take over a dead one
    lease_seconds: float = Field(30.0, gt=0, le=600)
    concurrency: int = Field(16, ge=1, le=256)  # residents handled side by side within a page
    page_limit: int = Field(1000, ge=1, le=1000)
    # per-message markers outlive sync_msg's 3-day retention, so no page read again re-runs one
    done_ttl_days: int = Field(4, ge=3, le=30)
    retry_delays: list[float] = Field(default_factory=lambda: [1.0, 5.0, 30.0])


class LogSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Settings(BaseSettings):
    """All of GridBot's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="GRIDBOT_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )
    toml_path: ClassVar[Path] = DEFAULT_SETTINGS_PATH
    environ: ClassVar[Mapping[str, str] | None] = None

    server: ServerSettings = Field(default_factory=ServerSettings)
    wecom: WeComSettings
    redis: RedisSettings = Field(default_factory=RedisSettings)
    callback: CallbackSettings = Field(default_factory=CallbackSettings)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    broadcast: BroadcastSettings = Field(default_factory=BroadcastSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    collect: CollectSettings = Field(default_factory=CollectSettings)
    cases: CasesSettings = Field(default_factory=CasesSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    kf: KfSettings = Field(default_factory=KfSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_path)
        if cls.environ is not None:
            env_settings = _MappingEnvSource(settings_cls, cls.environ)
        return (init_settings, env_settings, toml)


class _MappingEnvSource(EnvSettingsSource):
    """The environment source reading a given mapping, so tests never patch os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._mapping = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._mapping.items()}


def _env_name(loc: tuple[int | str, ...]) -> str:
    return "GRIDBOT_" + "__".join(str(part).upper() for part in loc)


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(part) for part in loc)
    if first["type"] == "missing":
        reason = "缺少该配置"
    elif first["type"] == "extra_forbidden":
        reason = "未知的配置项（拼写错误？）"
    else:
        reason = str(first["msg"]).removeprefix("Value error, ")
    more = f"（另有 {error.error_count() - 1} 处错误）" if error.error_count() > 1 else ""
    where = f"请在 settings.toml 中设置或使用环境变量 {_env_name(loc)}"
    return f"配置错误 {key}: {reason}；{where}{more}"


def load_settings(
    path: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read settings from `path` (default ./settings.toml) and `environ` (default os.environ)."""
    toml_path = Path(path) if path is not None else DEFAULT_SETTINGS_PATH
    if path is not None and not toml_path.is_file():
        raise SettingsError(f"配置错误: 找不到配置文件 {toml_path}")
    env = dict(os.environ if environ is None else environ)
    klass = type("BoundSettings", (Settings,), {"toml_path": toml_path, "environ": env})
    try:
        settings: Settings = klass(**overrides)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None
    return settings
