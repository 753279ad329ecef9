"""Drive the real ``fox`` executable against a platform it started (a plain helper module).

``fox up`` runs the platform detached; :func:`running_fox` always stops it
(``fox down``, then the platform's PID if it is still alive), so no test leaves
a platform behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

FOX = str(Path(sys.executable).with_name("fox"))
KINDS = ("Platform", "Environment", "VirtualEnvironment", "AppDeployment", "ReleaseManifest")


def fox(
    *args: str, cwd: Path, state_dir: Path, check: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``fox ARGS`` in ``cwd`` against the platform in ``state_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBEFOX_")}
    env["KUBEFOX_PLATFORM_STATE_DIR"] = str(state_dir)
    env["NO_COLOR"] = "1"
    done = subprocess.run(
        [FOX, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"fox {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
    return done


@contextlib.contextmanager
def running_fox(state_dir: Path, cwd: Path) -> Iterator[dict[str, Any]]:
    """``fox up`` (in the background) for the block; yields its ``-o json`` description."""
    started = fox("up", "-o", "json", cwd=cwd, state_dir=state_dir, check=True)
    info: dict[str, Any] = json.loads(started.stdout)
    try:
        yield info
    finally:
        fox("down", cwd=cwd, state_dir=state_dir)
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(info["pid"]), signal.SIGKILL)


def inventory(api: str, ca_file: Path | None = None) -> dict[str, dict[str, str]]:
    """Every resource's uid and generation, by kind and name: equal inventories, equal state.

    The generation moves with every change a user makes (spec, data, details);
    the resourceVersion also moves when the operator writes a status, which
    happens in the background and is not a change the user made.
    """
    found: dict[str, dict[str, str]] = {}
    verify = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
    with httpx.Client(base_url=api, verify=verify) as client:
        for kind in KINDS:
            items = client.get(f"/api/v1/resources/{kind}").json()["items"]
            found[kind] = {
                i["metadata"]["name"]: f"{i['metadata']['uid']}/{i['metadata']['generation']}"
                for i in items
            }
    return found
