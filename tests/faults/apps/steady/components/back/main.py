"""The steady back: answers every request with its process id."""

import os

from kubefox.kit import Kit, Kontext, Response

kit = Kit()


@kit.default
async def answer(k: Kontext) -> Response:
    """Answer at once with this process's id."""
    return k.text(f"back {os.getpid()}")


if __name__ == "__main__":
    kit.start()
