"""The calling side of the hop benchmark: ``GET /hop?n=N`` calls ``echo`` N times in sequence.

It answers with the duration of every call in nanoseconds (JSON array), timed
around ``k.request`` alone: what one component-to-component hop through the
broker costs the caller, from building the event to decoding the reply.
"""

import time

from kubefox.kit import Kit, Kontext, Response

kit = Kit()
echo = kit.component("echo")


@kit.route("Path(`/hop`)")
async def hop(k: Kontext) -> Response:
    """Call ``echo`` ``n`` times (query parameter, default 1000) and return each duration."""
    calls = int(k.query("n") or "1000")
    payload = b"x" * int(k.query("size") or "0")
    clock = time.perf_counter_ns
    samples = []
    for _ in range(calls):
        start = clock()
        await k.request(echo, body=payload)
        samples.append(clock() - start)
    return k.json(samples)


if __name__ == "__main__":
    kit.start()
