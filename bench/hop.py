"""One component calling another in sequence through the broker, against raw NATS.

Platform: the ``caller`` component of ``bench/apps/hop`` runs ``k.request(echo)``
N times in a loop (``GET /hop?n=N``) and times each call: component → its
``brk`` subject → broker (decode, zero-trust checks, route, encode) →
``echo``'s ``cmp`` subject → echo → the reply straight back to the caller's
inbox. Three NATS deliveries per call.

Raw NATS: a nats-py requester and responder process on the same
nats-server (:mod:`bench.rawnats`), the same payload size: two deliveries,
no encoding, no checks. Raw relayed: the same with a relay process in the
middle that republishes each request keeping its reply subject, as the
broker does: the three deliveries of a broker hop with no logic at all, so
the floor any brokered design has on this machine. Both raw variants run
twice: with nats-py (``raw_nats``, ``raw_nats_relayed``) and with
:mod:`kubefox.natsio`, our asyncio.Protocol client whose handlers run inside
the socket read (``natsio``, ``natsio_relayed``: requester, relay and
responder all natsio). They take turns for eight short rounds so drifting
load hits each alike (each round's p50 ratio is reported too). Each also
reports the CPU time its processes used per call (``cpu_us``; the raw
requester's own, the responder's and relay's from ``/proc``; for the
platform the caller, the platform process, where the broker runs, and
echo). Target (issue 8): platform p50 no more than 1.5x raw p50.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import urllib.request
from typing import Any

from bench.options import duration
from bench.processes import ROOT, Child, cpu_seconds, python_module
from bench.variants import start_platform

APP = ROOT / "bench" / "apps" / "hop"
#: Rounds in which every system takes its turn; many short ones, so that the
#: shared machine's drift falls on all of them alike.
ROUNDS = 8
#: Body of every call; the encoded platform event is a few hundred bytes more.
SIZE = 64
RAW_SUBJECT = "bench.hop.echo"
RELAY_SUBJECT = "bench.hop.relay"
#: The raw variants: name -> (client library, subject the requester calls).
RAW = {
    "raw_nats": ("nats-py", RAW_SUBJECT),
    "raw_nats_relayed": ("nats-py", RELAY_SUBJECT),
    "natsio": ("natsio", f"{RAW_SUBJECT}.natsio"),
    "natsio_relayed": ("natsio", f"{RELAY_SUBJECT}.natsio"),
}


def calls_per_round() -> int:
    """Calls per side and round: 15,000 in all for the default 10 s phases, fewer for quick runs."""
    return max(200, int(1500 * duration()) // ROUNDS)


class _Cpu:
    """CPU seconds used by a set of processes between :meth:`start` and :meth:`stop`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.used = dict.fromkeys(pids, 0.0)
        self._start: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self, extra: dict[str, float] | None = None) -> None:
        for name, pid in self.pids.items():
            self.used[name] += cpu_seconds(pid) - self._start[name]
        for name, seconds in (extra or {}).items():
            self.used[name] = self.used.get(name, 0.0) + seconds

    def per_call(self, calls: int) -> dict[str, float]:
        """Microseconds per call for each process, and their ``total``."""
        per = {name: round(s * 1e6 / max(1, calls), 1) for name, s in self.used.items()}
        per["total"] = round(sum(per.values()), 1)
        return per


def _platform_calls(url: str, calls: int) -> list[int]:
    query = f"n={calls}&size={SIZE}"
    with urllib.request.urlopen(f"{url}&{query}", timeout=120) as answer:  # noqa: S310
        samples: list[int] = json.loads(answer.read())
    return samples


def _raw_calls(requester: Child, cpu: _Cpu) -> list[int]:
    """Durations of one round of raw requests; ``cpu`` measures them, the requester's included."""
    cpu.start()
    requester.send_line()
    result: dict[str, Any] = requester.read_json(timeout=120)
    cpu.stop({"requester": result["cpu_seconds"]})
    samples: list[int] = result["samples"]
    return samples


def _summary(samples: list[int]) -> dict[str, Any]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "calls": len(samples),
        "p50_ms": round(cuts[49] / 1e6, 3),
        "p90_ms": round(cuts[89] / 1e6, 3),
        "p99_ms": round(cuts[98] / 1e6, 3),
        "mean_ms": round(statistics.fmean(samples) / 1e6, 3),
    }


def run_hop() -> dict[str, Any]:
    """Per-call latency of a component-to-component hop and of raw nats-py request-reply."""
    calls = calls_per_round()
    samples: dict[str, list[int]] = {"platform": [], **{name: [] for name in RAW}}
    per_round: list[float] = []  # each round's platform p50 / raw nats-py p50
    ready, platform = start_platform(str(APP))
    # With security on, the raw clients need the CA and a credential, as every platform client.
    nats_url = json.dumps(ready["nats_options"]) if "nats_options" in ready else ready["nats"]
    try:
        url = next(url for url in ready["urls"] if "kf-dep=" in url)
        with contextlib.ExitStack() as stack:
            responders: dict[str, Child] = {}
            relays: dict[str, Child] = {}
            for client in ("nats-py", "natsio"):
                echo = RAW_SUBJECT if client == "nats-py" else f"{RAW_SUBJECT}.natsio"
                relayed = RELAY_SUBJECT if client == "nats-py" else f"{RELAY_SUBJECT}.natsio"
                respond = python_module("bench.rawnats", client, "respond", nats_url, echo)
                relay = python_module("bench.rawnats", client, "relay", nats_url, relayed, echo)
                responders[client] = stack.enter_context(Child(f"{client}-responder", respond))
                relays[client] = stack.enter_context(Child(f"{client}-relay", relay))
            for child in (*responders.values(), *relays.values()):
                child.read_json(timeout=30)
            requesters = {
                name: stack.enter_context(
                    Child(
                        f"{name}-requester",
                        python_module(
                            "bench.rawnats",
                            client,
                            "request",
                            nats_url,
                            subject,
                            str(calls),
                            str(SIZE),
                        ),
                    )
                )
                for name, (client, subject) in RAW.items()
            }
            for child in requesters.values():
                child.read_json(timeout=60)  # warmed up
            pids = ready["pids"]
            cpu = {
                name: _Cpu(
                    {"relay": relays[client].pid, "responder": responders[client].pid}
                    if name.endswith("_relayed")
                    else {"responder": responders[client].pid}
                )
                for name, (client, _) in RAW.items()
            }
            cpu["platform"] = _Cpu(
                {
                    "caller": pids["component caller"],
                    "platform (broker)": pids["platform"],
                    "echo": pids["component echo"],
                }
            )
            _platform_calls(url, 500)  # warm-up: imports, caches, the broker's relay mode
            for round_ in range(ROUNDS):
                print(f"hop: round {round_ + 1} of {ROUNDS}, {calls} calls each", file=sys.stderr)
                this_round: dict[str, list[int]] = {}
                for name in RAW:
                    this_round[name] = _raw_calls(requesters[name], cpu[name])
                cpu["platform"].start()
                this_round["platform"] = _platform_calls(url, calls)
                cpu["platform"].stop()
                for name, values in this_round.items():
                    samples[name] += values
                per_round.append(
                    statistics.median(this_round["platform"])
                    / statistics.median(this_round["raw_nats"])
                )
    finally:
        platform.stop()
    report: dict[str, Any] = {"payload_bytes": SIZE}
    report.update(
        {
            name: {**_summary(values), "cpu_us": cpu[name].per_call(len(values))}
            for name, values in samples.items()
        }
    )
    hop, raw, relayed = report["platform"], report["raw_nats"], report["raw_nats_relayed"]
    ours, ours_relayed = report["natsio"], report["natsio_relayed"]
    report["ratio"] = {
        "p50": round(hop["p50_ms"] / raw["p50_ms"], 3),
        "p99": round(hop["p99_ms"] / raw["p99_ms"], 3),
        "relayed_p50": round(relayed["p50_ms"] / raw["p50_ms"], 3),
        "p50_vs_relayed": round(hop["p50_ms"] / relayed["p50_ms"], 3),
        # natsio against nats-py's raw request-reply, the baseline of the target
        "natsio_p50": round(ours["p50_ms"] / raw["p50_ms"], 3),
        "natsio_relayed_p50": round(ours_relayed["p50_ms"] / raw["p50_ms"], 3),
        "p50_per_round": [round(ratio, 3) for ratio in per_round],
    }
    report["targets"] = {"p50_ratio_at_most_1_5": report["ratio"]["p50"] <= 1.5}
    return report
