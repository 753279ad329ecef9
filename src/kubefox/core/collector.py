"""The garbage collector of a long-running server process: settled once it has started.

Two costs of CPython's defaults, measured in the hello-world frontend at 50
connections (``docs/benchmarks.md``, tracing):

* **Full passes rescan everything a process loaded.** Requests in flight when
  a young collection runs survive it and are promoted, so every few seconds
  the oldest generation fills by a quarter and a full pass walks all of the
  process's ~50,000 tracked objects (modules, classes, the SDKs): 17 ms each,
  9 in 8 s, 5 µs per request, and a 17 ms stall for whoever waits.
  :func:`gc.freeze` moves what start-up allocated out of the collector's sight.
* **The young generation fills with live requests.** Its threshold counts
  tracked objects allocated and not yet freed; 50 requests in flight hold
  more than CPython's 700, so it ran every 30 requests and each run walked
  the in-flight objects, 3 µs per request. The event path makes no reference
  cycles (a request's objects are freed by their reference counts), so a
  higher threshold delays almost nothing: at 10,000 no collection ran at all
  in 8 s under that load.
"""

from __future__ import annotations

import gc

#: Tracked objects allocated and not freed between two young collections (CPython: 700).
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Freeze what start-up allocated and raise the young generation's threshold.

    Call once, from a server process's entry point, when it has started.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
