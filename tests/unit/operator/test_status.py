"""Deployment distillation and the status rules, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubefox.operator import (
    ComponentRef,
    InstanceSpec,
    InstanceStatus,
    Observation,
    desired_status,
    instance_key,
    merge_status,
    referenced_components,
    same_status,
)
from kubefox.resources import (
    AppDeployment,
    AppDeploymentStatus,
    Condition,
    ConditionStatus,
    Problem,
    ProblemSource,
    ProblemSourceKind,
    ProblemType,
)
from tests.unit.operator.helpers import (
    BACKEND_HASH,
    FRONTEND_HASH,
    FRONTEND_HASH_2,
    app_deployment,
    state,
)

APP = "hello-world"
BACKEND = instance_key(APP, "backend", BACKEND_HASH)
FRONTEND = instance_key(APP, "frontend", FRONTEND_HASH)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def spec(component: str, hash_: str) -> InstanceSpec:
    return InstanceSpec(app=APP, component=component, hash=hash_, artifact="a")


def summary(conditions: list[Condition]) -> list[tuple[str, str, str, str, int | None]]:
    return [(c.type, c.status, c.reason, c.message, c.observed_generation) for c in conditions]


def hello(generation: int = 1) -> AppDeployment:
    return app_deployment(
        "hello-main",
        {"backend": BACKEND_HASH, "frontend": FRONTEND_HASH},
        generation=generation,
    )


def test_shared_backend_hash_is_one_instance_set() -> None:
    """Two deployments with the same backend hash distil to one backend and two frontends."""
    main = app_deployment("hello-main", {"backend": BACKEND_HASH, "frontend": FRONTEND_HASH})
    dev = app_deployment("hello-dev", {"backend": BACKEND_HASH, "frontend": FRONTEND_HASH_2})

    wanted = referenced_components([main, dev])

    assert wanted == {
        BACKEND: ComponentRef(app=APP, component="backend", hash=BACKEND_HASH),
        FRONTEND: ComponentRef(app=APP, component="frontend", hash=FRONTEND_HASH),
        instance_key(APP, "frontend", FRONTEND_HASH_2): ComponentRef(
            app=APP, component="frontend", hash=FRONTEND_HASH_2
        ),
    }


def test_same_component_of_another_app_is_another_instance_set() -> None:
    """The app is part of an instance set's identity, not only component and hash."""
    one = app_deployment("one", {"backend": BACKEND_HASH}, app="one")
    two = app_deployment("two", {"backend": BACKEND_HASH}, app="two")

    assert sorted(referenced_components([one, two])) == [
        instance_key("one", "backend", BACKEND_HASH),
        instance_key("two", "backend", BACKEND_HASH),
    ]


def test_no_deployments_want_nothing() -> None:
    """Without AppDeployments nothing should run."""
    assert referenced_components([]) == {}


def test_all_components_registered_is_available_and_deployed() -> None:
    """Every component with a live registration: Available=True, Progressing=False/Deployed."""
    observations = {
        BACKEND: Observation(registered=1, state=state(spec("backend", BACKEND_HASH))),
        FRONTEND: Observation(registered=2, state=state(spec("frontend", FRONTEND_HASH))),
    }

    conditions, problems = desired_status(hello(generation=3), observations)

    assert summary(conditions) == [
        (
            "Available",
            "True",
            "ComponentsAvailable",
            "Component Deployments have minimum required Pods available.",
            3,
        ),
        (
            "Progressing",
            "False",
            "ComponentsDeployed",
            "Component Deployments completed successfully.",
            3,
        ),
    ]
    assert problems == []


def test_started_but_unregistered_component_is_progressing() -> None:
    """A running process that has not registered yet: unavailable and progressing."""
    observations = {
        BACKEND: Observation(registered=1, state=state(spec("backend", BACKEND_HASH))),
        FRONTEND: Observation(registered=0, state=state(spec("frontend", FRONTEND_HASH))),
    }

    conditions, problems = desired_status(hello(), observations)

    assert summary(conditions) == [
        (
            "Available",
            "False",
            "ComponentUnavailable",
            "One or more Component Deployments is unavailable, see `status.problems` for details.",
            1,
        ),
        (
            "Progressing",
            "True",
            "ComponentDeploymentProgressing",
            "One or more Component Deployments is progressing.",
            1,
        ),
    ]
    assert problems == [
        Problem(
            type=ProblemType.DEPLOYMENT_UNAVAILABLE,
            message="Component Deployment does not have minimum availability.",
            causes=[
                ProblemSource(kind=ProblemSourceKind.DEPLOYMENT, name=FRONTEND, path="$"),
                ProblemSource(
                    kind=ProblemSourceKind.COMPONENT,
                    name="frontend",
                    observed_generation=1,
                    path="$.spec.components.frontend",
                ),
            ],
        )
    ]


def test_crash_looping_component_has_failed() -> None:
    """Enough quick exits in a row with nothing registered: Progressing=False/Failed."""
    crashing = state(
        spec("frontend", FRONTEND_HASH),
        status=InstanceStatus.BACKOFF,
        pid=None,
        failures=3,
        restarts=3,
        last_exit_code=1,
    )
    observations = {
        BACKEND: Observation(registered=1, state=state(spec("backend", BACKEND_HASH))),
        FRONTEND: Observation(registered=0, state=crashing),
    }

    conditions, problems = desired_status(hello(), observations, failed_after=3)

    assert [(c.type, c.status, c.reason) for c in conditions] == [
        ("Available", "False", "ComponentUnavailable"),
        ("Progressing", "False", "ComponentDeploymentFailed"),
    ]
    assert conditions[1].message == (
        "One or more Component Deployments has failed, see `status.problems` for details."
    )
    assert [(p.type, p.message) for p in problems] == [
        (
            ProblemType.DEPLOYMENT_UNAVAILABLE,
            "Component Deployment does not have minimum availability.",
        ),
        (
            ProblemType.DEPLOYMENT_FAILED,
            "Component Deployment has failed: its process exited 3 times in a row without "
            "registering, last exit code 1.",
        ),
    ]


def test_fewer_failures_than_the_threshold_still_progress() -> None:
    """Two quick exits with a threshold of three are still 'progressing'."""
    crashing = state(spec("frontend", FRONTEND_HASH), status=InstanceStatus.BACKOFF, failures=2)
    observations = {
        BACKEND: Observation(registered=1),
        FRONTEND: Observation(registered=0, state=crashing),
    }

    conditions, _ = desired_status(hello(), observations, failed_after=3)

    assert (conditions[1].status, conditions[1].reason) == (
        ConditionStatus.TRUE,
        "ComponentDeploymentProgressing",
    )


def test_registration_wins_over_a_crash_count() -> None:
    """A component that registered is available even if its scheduler saw exits."""
    flaky = state(spec("frontend", FRONTEND_HASH), failures=5, last_exit_code=1)
    observations = {
        BACKEND: Observation(registered=1),
        FRONTEND: Observation(registered=1, state=flaky),
    }

    conditions, problems = desired_status(hello(), observations)

    assert [c.reason for c in conditions] == ["ComponentsAvailable", "ComponentsDeployed"]
    assert problems == []


def test_missing_artifact_is_a_not_found_problem() -> None:
    """A missing artifact: DeploymentNotFound naming it, and the rollout has failed."""
    observations = {
        BACKEND: Observation(registered=1),
        FRONTEND: Observation(missing_artifact="hello-world.frontend.ffff"),
    }

    conditions, problems = desired_status(hello(), observations)

    assert [(c.status, c.reason) for c in conditions] == [
        (ConditionStatus.FALSE, "ComponentUnavailable"),
        (ConditionStatus.FALSE, "ComponentDeploymentFailed"),
    ]
    assert problems == [
        Problem(
            type=ProblemType.DEPLOYMENT_NOT_FOUND,
            message='Component artifact "hello-world.frontend.ffff" not found.',
            causes=[
                ProblemSource(
                    kind=ProblemSourceKind.COMPONENT,
                    name="frontend",
                    observed_generation=1,
                    path="$.spec.components.frontend",
                )
            ],
        )
    ]


def test_nothing_scheduled_is_upstreams_not_found() -> None:
    """No instance set and no known reason: upstream's "Component Deployment not found."."""
    conditions, problems = desired_status(hello(), {BACKEND: Observation(registered=1)})

    assert conditions[0].reason == "ComponentUnavailable"
    assert [(p.type, p.message) for p in problems] == [
        (ProblemType.DEPLOYMENT_NOT_FOUND, "Component Deployment not found.")
    ]


def test_unusable_artifact_fails_with_its_reason() -> None:
    """An artifact the scheduler cannot use fails the rollout, saying why."""
    observations = {
        BACKEND: Observation(registered=1),
        FRONTEND: Observation(start_error="the artifact has no main.py at its top level"),
    }

    conditions, problems = desired_status(hello(), observations)

    assert conditions[1].reason == "ComponentDeploymentFailed"
    assert problems[-1].type is ProblemType.DEPLOYMENT_FAILED
    assert problems[-1].message == (
        "Component Deployment could not be started: the artifact has no main.py at its top level."
    )


def test_dependency_problems_win_over_everything() -> None:
    """A missing dependency: both conditions False/ProblemsFound, problems from validation."""
    appdep = app_deployment(
        "hello-main",
        {"frontend": FRONTEND_HASH},
        dependencies={"frontend": {"backend": "KubeFox"}},
    )
    observations = {FRONTEND: Observation(registered=1)}

    conditions, problems = desired_status(appdep, observations)

    message = "One or more problems found, see `status.problems` for details."
    assert summary(conditions) == [
        ("Available", "False", "ProblemsFound", message, 1),
        ("Progressing", "False", "ProblemsFound", message, 1),
    ]
    assert [(p.type, p.message) for p in problems] == [
        (
            ProblemType.DEPENDENCY_NOT_FOUND,
            'Component "frontend" dependency "backend" of type "KubeFox" not found.',
        )
    ]


def test_unchanged_condition_keeps_its_transition_time() -> None:
    """lastTransitionTime moves only when a condition's status changes."""
    observations = {
        BACKEND: Observation(registered=1),
        FRONTEND: Observation(registered=0, state=state(spec("frontend", FRONTEND_HASH))),
    }
    first_conditions, first_problems = desired_status(hello(), observations)
    first = merge_status(None, first_conditions, first_problems, now=T0)
    observations[FRONTEND] = Observation(
        registered=0, state=state(spec("frontend", FRONTEND_HASH), failures=9)
    )
    later = T0 + timedelta(minutes=5)

    second_conditions, second_problems = desired_status(hello(), observations)
    second = merge_status(first, second_conditions, second_problems, now=later)

    available, progressing = second.conditions
    assert (available.reason, available.last_transition_time) == ("ComponentUnavailable", T0)
    assert (progressing.status, progressing.last_transition_time) == (
        ConditionStatus.FALSE,
        later,
    )
    assert second.problems[0].observed_time == T0  # seen before
    assert second.problems[-1].observed_time == later  # new


def test_same_status_ignores_times_only() -> None:
    """Statuses that differ only in times are the same; any other difference is not."""
    conditions, problems = desired_status(hello(), {BACKEND: Observation(registered=1)})
    one = merge_status(None, conditions, problems, now=T0)
    two = merge_status(None, conditions, problems, now=T0 + timedelta(hours=1))
    generation_two = merge_status(
        None, desired_status(hello(generation=2), {})[0], problems, now=T0
    )

    assert same_status(one, two)
    assert not same_status(one, generation_two)
    assert not same_status(None, one)
    assert same_status(None, AppDeploymentStatus())
