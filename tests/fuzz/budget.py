"""How many examples each property test tries: bounded in ``make test``, long in ``make fuzz``.

``KUBEFOX_FUZZ=long`` (set by ``make fuzz``) multiplies every budget by
:data:`LONG_FACTOR`. It is read once, when the tests are collected, before the
autouse fixture that hides ``KUBEFOX_*`` variables from tests runs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: How much longer ``make fuzz`` runs each property test than ``make test``.
LONG_FACTOR = 50
LONG = os.environ.get("KUBEFOX_FUZZ", "") == "long"


def budget(examples: int) -> settings:
    """Hypothesis settings trying ``examples`` cases (times :data:`LONG_FACTOR` with ``long``)."""
    return settings(
        max_examples=examples * (LONG_FACTOR if LONG else 1),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,  # the server is shared by every example
        ],
    )
