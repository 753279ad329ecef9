"""How many Go threads the embedded nats-server is given (``GOMAXPROCS``)."""

from __future__ import annotations

import pytest

from kubefox.store.natsd import go_threads, server_environment


@pytest.mark.parametrize(
    ("environ", "cpus", "threads"),
    [
        ({}, 1, "1"),
        ({}, 2, "1"),
        ({}, 3, "1"),
        ({}, 16, "8"),
        ({"GOMAXPROCS": " 5 "}, 16, "5"),
        ({"GOMAXPROCS": ""}, 4, "2"),
    ],
)
def test_half_the_cpus_at_least_one_or_the_users_choice(
    environ: dict[str, str], cpus: int, threads: str
) -> None:
    assert go_threads(environ, cpus) == threads


def test_the_server_keeps_the_rest_of_our_environment() -> None:
    environ = server_environment({"PATH": "/bin", "HOME": "/root"})

    assert environ["PATH"] == "/bin"
    assert environ["HOME"] == "/root"
    assert int(environ["GOMAXPROCS"]) >= 1


def test_a_chosen_count_wins_over_the_environment() -> None:
    assert go_threads({"GOMAXPROCS": "5"}, 16, chosen=3) == "3"


def test_the_server_is_given_the_chosen_count() -> None:
    assert server_environment({"GOMAXPROCS": "5"}, 2)["GOMAXPROCS"] == "2"
