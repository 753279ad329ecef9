"""The called side of the hop benchmark: answers every request with its own body."""

from kubefox.kit import Kit, Kontext, Response

kit = Kit()


@kit.default
async def echo(k: Kontext) -> Response:
    """Reply with the request's body."""
    return k.bytes(k.body, "application/octet-stream")


if __name__ == "__main__":
    kit.start()
