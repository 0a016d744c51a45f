"""Run ``spart serve`` as a child process on a free port of 127.0.0.1 (used by the tests and the load test)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

SRC = Path(__file__).resolve().parents[2]  # the directory holding the ``spart`` package


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    args: list[str], output: IO[bytes] | None = None, timeout: float = 180.0, port: int | None = None
) -> tuple[subprocess.Popen, str]:
    """Start ``spart serve ARGS --port PORT`` and wait until ``/status`` answers.

    :param args: the command's arguments (``--store``, ``--pipeline``...; not ``--port``).
    :param output: where the server's stdout and stderr go (default: inherited).
    :param timeout: seconds to wait for ``/status``.
    :param port: the port (default: a free one).
    :returns: the process and the server's base URL (``http://127.0.0.1:<port>``).
    :raises RuntimeError: if the server exits or does not answer in time (it is then killed).
    """
    import httpx

    port = port or free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)}
    process = subprocess.Popen(
        [sys.executable, "-m", "spart", "serve", *args, "--host", "127.0.0.1", "--port", str(port)],
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"spart serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/status", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise RuntimeError(f"spart serve did not answer within {timeout:g} s")


def stop_server(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """Terminate the server (kill it if it does not stop within ``timeout`` seconds)."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
