"""``python -m bench.embedded APP_DIR``: an embedded platform serving one app, for a scenario.

Starts :class:`~kubefox.platform.EmbeddedPlatform` in a temporary state
directory on uvloop (on asyncio's own loop with ``BENCH_PLATFORM_LOOP=asyncio``),
publishes the app from a temporary git copy and applies its
``hack/environments`` (what ``fox up --demo`` does), then prints one JSON
line: httpsrv's URL, the URLs that answer, nats-server's URL and the pid of
every process of the platform. It stops everything on SIGTERM or when stdin
closes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

import uvloop

from kubefox.core import collector
from kubefox.platform import EmbeddedPlatform, PlatformSettings
from kubefox.platform.demo import deploy_demo
from kubefox.telemetry.logging import configure_logging


def stop_on_stdin_eof(stopping: asyncio.Event) -> None:
    """Set ``stopping`` once stdin closes: the parent went away, even if it was killed."""
    loop = asyncio.get_running_loop()

    def wait() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stopping.set)

    # A daemon thread, since stdin may be a file or a terminal that no event loop can watch.
    threading.Thread(target=wait, name="stdin-eof", daemon=True).start()


async def serve(app_dir: Path, state_dir: Path) -> None:
    settings = PlatformSettings(state_dir=state_dir, shutdown_grace=5.0, log_level="info")
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    async with EmbeddedPlatform(settings) as platform:
        urls = await deploy_demo(platform, app_dir, within=60.0)
        collector.settle()  # as fox up does once the platform is up
        # How a bench client reaches NATS with security on: CA, admin creds, inbox prefix.
        options = await platform.nats_options("kubefox-bench")
        ready = {
            "http": platform.http_url,
            "nats": platform.nats.url,
            "nats_options": {
                "url": options.url,
                "ca_file": str(options.ca_file) if options.ca_file else None,
                "creds_file": str(options.creds_file) if options.creds_file else None,
                "inbox_prefix": options.inbox_prefix,
            },
            "urls": urls,
            "pids": {
                "platform": os.getpid(),
                "nats-server": platform.nats.pid,
                **{
                    f"component {state.component}": state.pid
                    for state in platform.scheduler.instances()
                },
            },
        }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        stop_on_stdin_eof(stopping)
        await stopping.wait()


def main() -> None:
    app_dir = Path(sys.argv[1]).resolve()
    # BENCH_PLATFORM_LOOP=asyncio measures the platform on the stock event loop.
    run = asyncio.run if os.environ.get("BENCH_PLATFORM_LOOP") == "asyncio" else uvloop.run
    with tempfile.TemporaryDirectory(prefix="kubefox-bench-") as state:
        run(serve(app_dir, Path(state)))


if __name__ == "__main__":
    main()
