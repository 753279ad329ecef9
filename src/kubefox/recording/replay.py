"""Replay recorded requests against a deployment and report what changed.

:func:`replay_request` turns an exchange into the request to send again:
the recorded method, path, query, headers and body, with the context
parameters the client sent removed and ``kf-dep``/``kf-ve`` naming the target
instead. :func:`replay` sends each through a caller-given ``send`` (``fox``
uses httpx against httpsrv) and compares the answers
(:mod:`kubefox.recording.compare`). No HTTP client is imported here, so
httpsrv can import the package without one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from urllib.parse import quote, unquote_plus

from kubefox.recording.compare import Difference, IgnoreRules, compare
from kubefox.recording.records import Exchange, RecordedResponse

# httpsrv's context parameters (kubefox.adapters.http.translate.STRIPPED_PARAMS, a
# layer above): whatever the client named is replaced by the replay's target.
_CONTEXT_PARAMS = frozenset(
    {
        "kubefox-virtual-environment",
        "kf-ve",
        "kubefox-app-deployment",
        "kf-dep",
        "kubefox-event-type",
        "kf-type",
    }
)
# Computed again by the client for the body it sends.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "expect"})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReplayRequest:
    """One request to send again: ``target`` is path and query, to append to httpsrv's URL."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReplayResult:
    """The outcome of one replayed exchange."""

    index: int
    exchange: Exchange
    replayed: RecordedResponse | None
    differences: tuple[Difference, ...] = ()
    #: Why the exchange could not be replayed (then it counts as differing).
    error: str = ""

    @property
    def differs(self) -> bool:
        """Whether anything not ignored changed, or the replay failed."""
        return bool(self.differences or self.error)


Send = Callable[[ReplayRequest], RecordedResponse]


def _query(raw: str, deployment: str, virtual_env: str) -> str:
    kept = [
        part
        for part in raw.split("&")
        if part and unquote_plus(part.split("=", 1)[0]).lower() not in _CONTEXT_PARAMS
    ]
    kept += [f"kf-dep={quote(deployment, safe='')}", f"kf-ve={quote(virtual_env, safe='')}"]
    return "&".join(kept)


def replay_request(exchange: Exchange, *, deployment: str, virtual_env: str) -> ReplayRequest:
    """The request that replays ``exchange`` against ``deployment`` in ``virtual_env``."""
    request = exchange.request
    headers = [
        (name, value)
        for name, value in request.headers
        if name.lower() not in _CONTEXT_PARAMS and name.lower() not in _FRAMING_HEADERS
    ]
    return ReplayRequest(
        method=request.method,
        target=f"{request.path}?{_query(request.query, deployment, virtual_env)}",
        headers=headers,
        body=request.body,
    )


def replay(
    exchanges: Iterable[Exchange],
    *,
    send: Send,
    deployment: str,
    virtual_env: str,
    rules: IgnoreRules,
) -> list[ReplayResult]:
    """Send every exchange again, in order, and compare each answer with the recorded one.

    ``send`` raises ``OSError`` (``UnavailableError`` is one) when a request
    gets no answer; that exchange is then reported with ``error`` set.
    """
    results: list[ReplayResult] = []
    for index, exchange in enumerate(exchanges, start=1):
        if exchange.truncated:
            results.append(
                ReplayResult(
                    index=index,
                    exchange=exchange,
                    replayed=None,
                    error="not replayed: a body was too large to record whole",
                )
            )
            continue
        request = replay_request(exchange, deployment=deployment, virtual_env=virtual_env)
        try:
            answer = send(request)
        except OSError as exc:
            results.append(
                ReplayResult(index=index, exchange=exchange, replayed=None, error=str(exc))
            )
            continue
        results.append(
            ReplayResult(
                index=index,
                exchange=exchange,
                replayed=answer,
                differences=tuple(compare(exchange.response, answer, rules)),
            )
        )
    return results
