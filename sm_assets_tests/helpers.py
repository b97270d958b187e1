"""Small helpers shared by the tests that start servers or subprocesses."""

import os
import socket


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment minus anything AWS, sm-assets or Dagster, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_ASSETS_", "DAGSTER_"))}
    env.update(extra)
    return env
