"""The release state machine (§1.11), pass by pass, without a store or processes."""

from __future__ import annotations

import re
import uuid

from kubefox.releases import ReleaseInputs, reconcile_release
from kubefox.resources import (
    ArchiveReason,
    Condition,
    HTTPAdapter,
    ProblemType,
    VirtualEnvironment,
)
from tests.unit.releases.world import (
    T0,
    Ids,
    active_routes,
    after,
    app_deployment,
    apps,
    environment,
    later,
    requesting,
    run,
    virtual_environment,
)


def conditions(ve_or_status: object) -> dict[str, tuple[str, str, str]]:
    status = ve_or_status.status if isinstance(ve_or_status, VirtualEnvironment) else ve_or_status
    found: list[Condition] = status.conditions  # type: ignore[attr-defined]
    return {c.type: (str(c.status), c.reason, c.message) for c in found}


def problem_types(problems: list) -> list[str]:  # type: ignore[type-arg]
    return [str(p.type) for p in problems]


def released(name: str = "qa", **kwargs: object) -> VirtualEnvironment:
    """``name`` with hello-world-v1 released and active (one pass from a fresh request)."""
    ve = virtual_environment(name, release=apps(), **kwargs)  # type: ignore[arg-type]
    return after(ve, run(ve))


def test_request_becomes_pending_with_a_uuid4_id_and_request_time() -> None:
    """A new spec.release becomes the pending release: uuid4 id, requestTime now."""
    ve = virtual_environment(release=apps())
    unavailable = app_deployment(status={})

    outcome = reconcile_release(
        ReleaseInputs(
            ve=ve,
            environment=environment(),
            app_deployments={"hello-world-v1": unavailable},
            adapters={},
            manifests={},
            now=T0,
        )
    )

    pending = outcome.status.pending_release
    assert pending is not None
    assert uuid.UUID(pending.id).version == 4
    assert pending.request_time == T0
    assert pending.apps["hello-world"].app_deployment == "hello-world-v1"
    assert outcome.status.active_release is None


def test_pending_release_with_problems_stays_pending_until_its_deadline() -> None:
    """Problems keep a release pending (ReleasePending True/ProblemsFound) until its deadline."""
    ve = virtual_environment(release=apps())

    outcome = run(ve, deployments=[app_deployment(status={})], now=later(100))

    assert conditions(outcome.status) == {
        "ReleasePending": (
            "True",
            "ProblemsFound",
            "One or more problems found with Release preventing it from being activated, "
            "see `status.pendingRelease` for details.",
        ),
        "ActiveReleaseAvailable": (
            "False",
            "ReleasePending",
            "No active Release, Release is pending activation.",
        ),
    }
    assert outcome.requeue_after is not None
    assert 299 < outcome.requeue_after <= 300.1
    assert outcome.manifest is None


def test_release_without_problems_is_activated_at_once_in_testing() -> None:
    """A Testing release activates when it has no problems, without a manifest."""
    ve = virtual_environment(release=apps())

    outcome = run(ve)

    active = outcome.status.active_release
    assert active is not None
    assert active.activation_time == T0
    assert active.release_manifest is None
    assert outcome.status.pending_release is None
    assert outcome.manifest is None
    assert outcome.requeue_after is None
    assert conditions(outcome.status) == {
        "ActiveReleaseAvailable": (
            "True",
            "ContextAvailable",
            "Release AppDeployments are available, Routes and Adapters are valid and "
            "compatible with the VirtualEnv.",
        ),
        "ReleasePending": ("False", "ReleaseActivated", "Release was activated."),
    }


def test_stable_activation_creates_a_manifest_named_as_upstream() -> None:
    """Stable: the active release names a manifest <ve>-<resourceVersion>-<UTC YYYYMMDD-HHMMSS>."""
    ve = virtual_environment("prod", release=apps(), resource_version="5747")

    outcome = run(ve)

    manifest = outcome.manifest
    assert manifest is not None
    assert manifest.metadata.name == "prod-5747-20240201-162421"
    assert outcome.status.active_release is not None
    assert outcome.status.active_release.release_manifest == manifest.metadata.name


def test_manifest_holds_environment_ve_deployments_used_adapters_and_merged_data() -> None:
    """The manifest snapshots what the release depends on, pinned by uid/version/generation."""
    definitions = {
        "frontend": {
            "type": "KubeFox",
            "hash": "9c1b7b9b3f0e4e0e8a8a1d2c3b4a5f60",
            "dependencies": {"graphql": {"type": "HTTPAdapter"}},
        }
    }
    deployment = app_deployment(definitions=definitions)
    adapters = [
        HTTPAdapter.model_validate(
            {
                "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "2"},
                "spec": {"url": "http://{{.Vars.db}}/"},
            }
        )
        for name in ("graphql", "unused")
    ]
    ve = virtual_environment("prod", release=apps(), vars={"db": "prod-db", "who": "Everyone"})

    outcome = run(ve, deployments=[deployment], adapters=adapters, ids=Ids())

    manifest = outcome.manifest
    assert manifest is not None
    spec = manifest.spec
    assert spec.release_id == "r1"
    assert spec.environment.metadata.name == "prod"
    assert spec.environment.metadata.uid == "uid-env-prod"
    assert spec.virtual_environment.metadata.resource_version == "11"
    assert [d.metadata.name for d in spec.app_deployments] == ["hello-world-v1"]
    assert spec.app_deployments[0].metadata.generation == 1
    assert [a.metadata.name for a in spec.adapters.http] == ["graphql"]
    assert manifest.data.vars == {"who": "Everyone", "subPath": "prod", "db": "prod-db"}
    assert manifest.metadata.owner_references[0].name == "prod"
    assert manifest.metadata.owner_references[0].uid == "uid-ve-prod"


def test_new_release_supersedes_the_active_one_into_history() -> None:
    """Activating a release archives the old active one as Superseded, newest first."""
    ve = released()
    v2 = app_deployment("hello-world-v2", version="v2")
    ve = requesting(ve, apps("hello-world-v2", "v2"))

    outcome = run(ve, deployments=[app_deployment(), v2], now=later(60), ids=Ids())

    assert outcome.status.active_release is not None
    assert outcome.status.active_release.apps["hello-world"].app_deployment == "hello-world-v2"
    [old] = outcome.status.release_history
    assert old.apps["hello-world"].app_deployment == "hello-world-v1"
    assert old.archive_reason is ArchiveReason.SUPERSEDED
    assert old.archive_time == later(60)
    assert old.activation_time == T0


def test_missing_deployment_is_app_deployment_not_found() -> None:
    """A release naming a deployment that does not exist: AppDeploymentNotFound, upstream's text."""
    ve = virtual_environment(release=apps("hello-world-nope", None))

    outcome = run(ve)

    pending = outcome.status.pending_release
    assert pending is not None
    [problem] = pending.problems
    assert problem.type is ProblemType.APP_DEPLOYMENT_NOT_FOUND
    assert problem.message == 'AppDeployment "hello-world-nope" for App "hello-world" not found.'
    assert problem.causes[0].path == "$.spec.release.apps.hello-world.appDeployment"
    assert problem.observed_time == T0


def test_unavailable_deployment_is_app_deployment_failed() -> None:
    """A deployment whose components do not all run blocks activation: AppDeploymentFailed."""
    status = {
        "conditions": [
            {
                "type": "Available",
                "status": "False",
                "reason": "ComponentUnavailable",
                "observedGeneration": 1,
            },
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ComponentDeploymentFailed",
                "observedGeneration": 1,
            },
        ]
    }
    ve = virtual_environment(release=apps())

    outcome = run(ve, deployments=[app_deployment(status=status)])

    pending = outcome.status.pending_release
    assert pending is not None
    assert [p.message for p in pending.problems] == [
        'One or more Component Deployments of AppDeployment "hello-world-v1" are unavailable.',
        'One or more Component Deployments of AppDeployment "hello-world-v1" failed.',
    ]
    assert problem_types(pending.problems) == ["AppDeploymentFailed", "AppDeploymentFailed"]
    assert pending.problems[0].causes[0].value == "False,ComponentUnavailable"


def test_deployment_not_yet_observed_at_its_generation_is_not_available() -> None:
    """Availability observed at an older generation does not count: the release waits."""
    deployment = app_deployment(
        generation=2,
        status={
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "ComponentsAvailable",
                    "observedGeneration": 1,
                }
            ]
        },
    )
    ve = virtual_environment(release=apps())

    outcome = run(ve, deployments=[deployment])

    assert outcome.status.active_release is None
    assert problem_types(outcome.status.pending_release.problems) == ["AppDeploymentFailed"]  # type: ignore[union-attr]


def test_unversioned_release_into_stable_is_a_policy_violation() -> None:
    """Stable needs a version: PolicyViolation with upstream's message and paths."""
    main = app_deployment("hello-world-main", version=None)
    ve = virtual_environment("prod", release=apps("hello-world-main", None))

    outcome = run(ve, deployments=[main])

    pending = outcome.status.pending_release
    assert pending is not None
    [problem] = pending.problems
    assert problem.type is ProblemType.POLICY_VIOLATION
    assert problem.message == 'Version is required but not set for App "hello-world".'
    assert [(c.path, c.value) for c in problem.causes] == [
        ("$.spec.releasePolicy.versionRequired", "Stable"),
        ("$.spec.release.apps.hello-world.version", ""),
    ]


def test_release_version_differing_from_the_deployment_is_a_version_conflict() -> None:
    """The version a release asks for must be the deployment's: VersionConflict otherwise."""
    ve = virtual_environment(release=apps("hello-world-v1", "v2"))

    outcome = run(ve)

    [problem] = outcome.status.pending_release.problems  # type: ignore[union-attr]
    assert problem.type is ProblemType.VERSION_CONFLICT
    assert problem.message == (
        'AppDeployment "hello-world-v1" version "v1" does not match App "hello-world" version "v2".'
    )


def test_pending_release_is_validated_against_the_virtual_environments_data() -> None:
    """§1.10 runs against VE over Environment data: a missing route var blocks activation."""
    ve = virtual_environment(release=apps())

    outcome = run(ve, env=environment("qa", who="World"))

    [problem] = outcome.status.pending_release.problems  # type: ignore[union-attr]
    assert problem.type is ProblemType.VAR_NOT_FOUND
    assert problem.causes[0].path == "$.spec.components.frontend.routes[0].subPath"


def test_active_stable_release_is_checked_with_its_manifest_data() -> None:
    """Later edits to the Environment do not break a Stable release: its manifest's data counts."""
    ve = virtual_environment("prod", release=apps())
    first = run(ve)
    assert first.manifest is not None
    stripped = environment("prod", who="Universe")

    outcome = run(after(ve, first), env=stripped, manifests=[first.manifest], now=later(5))

    assert outcome.status.active_release is not None
    assert outcome.status.active_release.problems == []
    assert conditions(outcome.status)["ActiveReleaseAvailable"][:2] == ("True", "ContextAvailable")


def test_active_testing_release_follows_live_data() -> None:
    """A Testing release is checked with live data: a removed var makes it unavailable."""
    ve = released()

    outcome = run(ve, env=environment("qa", who="World"), now=later(5))

    assert problem_types(outcome.status.active_release.problems) == ["VarNotFound"]  # type: ignore[union-attr]
    assert conditions(outcome.status)["ActiveReleaseAvailable"] == (
        "False",
        "ProblemsFound",
        "One or more problems found with the active Release causing it to be unavailable, "
        "see `status.activeRelease` for details.",
    )


def test_missing_manifest_of_the_active_release_is_a_problem() -> None:
    """An active release whose manifest is gone reports ReleaseManifestNotFound."""
    ve = virtual_environment("prod", release=apps())
    first = run(ve, ids=Ids())

    outcome = run(after(ve, first), manifests=[], now=later(1))

    [problem] = outcome.status.active_release.problems  # type: ignore[union-attr]
    assert problem.type is ProblemType.RELEASE_MANIFEST_NOT_FOUND
    assert (
        problem.message
        == 'ReleaseManifest "prod-11-20240201-162421" for active Release "r1" not found.'
    )


def test_deadline_archives_the_pending_release_then_rolls_spec_back() -> None:
    """A release past its deadline is archived PendingDeadlineExceeded, then spec is restored."""
    ve = released()
    bad = requesting(ve, apps("hello-world-nope", None))
    pending = after(bad, run(bad, now=later(10)))

    expired = run(pending, now=later(10 + 300))
    rolled = run(after(pending, expired), now=later(311))

    assert expired.status.pending_release is None
    assert expired.status.pending_release_failed is True
    assert (
        expired.status.release_history[0].archive_reason is ArchiveReason.PENDING_DEADLINE_EXCEEDED
    )
    assert conditions(expired.status)["ReleasePending"] == (
        "False",
        "PendingDeadlineExceeded",
        "Deadline exceeded before pending Release could be activated.",
    )
    assert rolled.rollback is not None
    assert rolled.rollback.release is not None
    assert rolled.rollback.release.apps["hello-world"].app_deployment == "hello-world-v1"


def test_rollback_without_an_active_release_clears_spec_release() -> None:
    """A failed first release rolls spec.release back to nothing."""
    ve = virtual_environment(
        release=apps("hello-world-nope", None), policy={"activationDeadlineSeconds": 3}
    )
    pending = after(ve, run(ve))
    expired = after(pending, run(pending, now=later(3)))

    rolled = run(expired, now=later(4))

    assert rolled.rollback is not None
    assert rolled.rollback.release is None
    assert rolled.status == expired.status


def test_after_rollback_the_deadline_stays_visible_and_the_flag_is_cleared() -> None:
    """After the rollback pendingReleaseFailed clears and ReleasePending keeps its reason."""
    ve = virtual_environment(
        release=apps("hello-world-nope", None), policy={"activationDeadlineSeconds": 3}
    )
    pending = after(ve, run(ve))
    expired = after(pending, run(pending, now=later(3)))
    restored = requesting(expired, None)

    outcome = run(restored, now=later(4))

    assert outcome.rollback is None
    assert outcome.status.pending_release_failed is False
    assert conditions(outcome.status) == {
        "ReleasePending": (
            "False",
            "PendingDeadlineExceeded",
            "Deadline exceeded before pending Release could be activated.",
        ),
        "ActiveReleaseAvailable": ("False", "NoRelease", "No Release set for VirtualEnvironment."),
    }


def test_clearing_spec_release_archives_active_and_pending_as_superseded() -> None:
    """No spec.release: the active and pending releases go to history, conditions NoRelease."""
    ve = released()
    ve = requesting(ve, apps("hello-world-nope", None))
    ve = after(ve, run(ve, now=later(1)))
    ve = requesting(ve, None)

    outcome = run(ve, now=later(2))

    assert outcome.status.active_release is None
    assert outcome.status.pending_release is None
    assert [h.archive_reason for h in outcome.status.release_history] == [
        ArchiveReason.SUPERSEDED
    ] * 2
    assert conditions(outcome.status) == {
        "ActiveReleaseAvailable": ("False", "NoRelease", "No Release set for VirtualEnvironment."),
        "ReleasePending": ("False", "NoRelease", "No Release set for VirtualEnvironment."),
    }


def test_replaced_pending_release_is_archived_superseded() -> None:
    """A pending release replaced by another request goes to history rather than vanishing."""
    ve = virtual_environment(release=apps("hello-world-nope", None))
    ve = after(ve, run(ve, ids=Ids()))
    ve = requesting(ve, apps("hello-world-gone", None))

    outcome = run(ve, now=later(1), ids=Ids())

    [replaced] = outcome.status.release_history
    assert replaced.apps["hello-world"].app_deployment == "hello-world-nope"
    assert replaced.archive_reason is ArchiveReason.SUPERSEDED


def test_missing_environment_sets_environment_not_found_and_clears_problems() -> None:
    """Without its Environment both conditions say EnvironmentNotFound and problems are cleared."""
    ve = virtual_environment(release=apps("hello-world-nope", None))

    outcome = run(ve, env=None)

    assert conditions(outcome.status) == {
        "ReleasePending": ("True", "EnvironmentNotFound", "Environment 'qa' not found."),
        "ActiveReleaseAvailable": ("False", "EnvironmentNotFound", "Environment 'qa' not found."),
    }
    assert outcome.status.pending_release is not None
    assert outcome.status.pending_release.problems == []


def test_a_pass_that_changes_nothing_returns_the_same_status() -> None:
    """The machine is idempotent: feeding its output back changes nothing, times included."""
    ve = released()

    outcome = run(ve, now=later(30))

    assert outcome.status == ve.status


def test_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    """lastTransitionTime changes only when a condition's status does."""
    ve = virtual_environment(release=apps("hello-world-nope", None))
    first = after(ve, run(ve))
    ve2 = requesting(first, apps("hello-world-gone", None))

    outcome = run(ve2, now=later(9))

    pending = next(c for c in outcome.status.conditions if c.type == "ReleasePending")
    assert pending.last_transition_time == T0


def test_history_is_trimmed_to_the_count_limit_newest_first() -> None:
    """History keeps at most historyLimits.count entries, the newest."""
    ve = released(policy={"historyLimits": {"count": 2}})
    for step, version in enumerate(("v2", "v3", "v4"), start=1):
        deployment = f"hello-world-{version}"
        ve = requesting(ve, apps(deployment, version))
        ve = after(
            ve,
            run(
                ve,
                deployments=[
                    app_deployment(f"hello-world-{v}", version=v) for v in ("v1", "v2", "v3", "v4")
                ],
                now=later(step * 60),
            ),
        )

    history = ve.status.release_history  # type: ignore[union-attr]
    assert [h.apps["hello-world"].app_deployment for h in history] == [
        "hello-world-v3",
        "hello-world-v2",
    ]


def test_history_entries_older_than_the_age_limit_are_all_dropped() -> None:
    """Every entry older than ageDays goes, the first expired one too (upstream kept it)."""
    ve = released(policy={"historyLimits": {"ageDays": 1}})
    for step, version in enumerate(("v2", "v3"), start=1):
        ve = requesting(ve, apps(f"hello-world-{version}", version))
        ve = after(
            ve,
            run(
                ve,
                deployments=[
                    app_deployment(f"hello-world-{v}", version=v) for v in ("v1", "v2", "v3")
                ],
                now=later(step * 3600),
            ),
        )

    outcome = run(
        ve,
        deployments=[app_deployment("hello-world-v3", version="v3")],
        now=later(3600 + 86400 + 1),
    )

    assert [h.apps["hello-world"].app_deployment for h in outcome.status.release_history] == [
        "hello-world-v2"
    ]


def test_manifests_nothing_references_are_deleted() -> None:
    """This VE's manifests that are neither active nor in history are deleted; others are not."""
    ve = virtual_environment("prod", release=apps())
    first = run(ve)
    assert first.manifest is not None
    stale = first.manifest.model_copy(deep=True)
    stale.metadata.name = "prod-1-20240101-000000"
    foreign = first.manifest.model_copy(deep=True)
    foreign.metadata.name = "staging-1-20240101-000000"
    foreign.spec.virtual_environment.metadata.name = "staging"

    outcome = run(after(ve, first), manifests=[first.manifest, stale, foreign], now=later(1))

    assert outcome.delete_manifests == ("prod-1-20240101-000000",)


def test_release_whose_route_another_active_release_serves_is_a_route_conflict() -> None:
    """Two VEs resolving a route to one rule: the later release stays pending, RouteConflict."""
    qa = virtual_environment("qa")
    twin = virtual_environment("qa-twin", env="qa", release=apps())

    outcome = run(twin, others=[active_routes(qa, activated=T0)], now=later(1))

    assert outcome.status.active_release is None
    [problem] = outcome.status.pending_release.problems  # type: ignore[union-attr]
    assert problem.type is ProblemType.ROUTE_CONFLICT
    assert problem.message == (
        'Route "Path(`/qa/hello`)" of Component "frontend" in AppDeployment "hello-world-v1" '
        'conflicts with the same Route of AppDeployment "hello-world-v1" released to '
        'VirtualEnvironment "qa".'
    )
    assert [(c.kind, c.name, c.path) for c in problem.causes] == [
        ("AppDeployment", "hello-world-v1", "$.spec.components.frontend.routes[0]"),
        ("VirtualEnvironment", "qa", "$.status.activeRelease.apps.hello-world"),
    ]


def test_active_release_activated_later_than_a_conflicting_one_is_unavailable() -> None:
    """Of two active releases serving one rule, only the later one reports the conflict."""
    first = released("qa")
    second = released("qa-twin", env="qa")
    second_activated = later(60)
    second.status.active_release.activation_time = second_activated  # type: ignore[union-attr]

    for_first = run(
        first, others=[active_routes(second, activated=second_activated)], now=later(61)
    )
    for_second = run(second, others=[active_routes(first, activated=T0)], now=later(61))

    assert for_first.status.active_release.problems == []  # type: ignore[union-attr]
    assert problem_types(for_second.status.active_release.problems) == ["RouteConflict"]  # type: ignore[union-attr]
    assert conditions(for_second.status)["ActiveReleaseAvailable"][:2] == ("False", "ProblemsFound")


def test_releases_with_distinct_routes_do_not_conflict() -> None:
    """qa and prod resolve hello-world's route differently: no conflict."""
    qa = virtual_environment("qa")
    prod = virtual_environment("prod", release=apps())

    outcome = run(prod, others=[active_routes(qa, activated=T0)])

    assert outcome.status.active_release is not None
    assert outcome.status.active_release.problems == []


def test_manifest_name_fits_a_dns_label_for_long_ve_names() -> None:
    """A long VirtualEnvironment name is cut so the manifest name stays a valid name."""
    ve = virtual_environment("p" * 60, env="prod", release=apps())

    outcome = run(ve)

    assert outcome.manifest is not None
    assert len(outcome.manifest.metadata.name) <= 63
    assert re.fullmatch(r"p+-11-20240201-162421", outcome.manifest.metadata.name)


def test_adapter_dependency_is_checked_against_the_release_adapters() -> None:
    """A released component depending on a missing HTTPAdapter is DependencyNotFound."""
    definitions = {
        "frontend": {
            "type": "KubeFox",
            "hash": "9c1b7b9b3f0e4e0e8a8a1d2c3b4a5f60",
            "dependencies": {"graphql": {"type": "HTTPAdapter"}},
        }
    }
    ve = virtual_environment(release=apps())

    outcome = run(ve, deployments=[app_deployment(definitions=definitions)])

    assert problem_types(outcome.status.pending_release.problems) == ["DependencyNotFound"]  # type: ignore[union-attr]
