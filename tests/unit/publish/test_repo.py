"""Reading the app's repository: commit facts, dirtiness, app.yaml and the snapshot."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubefox.core.errors import InvalidError
from kubefox.publish import GitRepo, find_app_dir, load_app, read_snapshot
from kubefox.publish.repo import strip_credentials
from tests.unit.publish.gitrepos import AppRepo, hello_world_repo


def test_a_directory_outside_any_repository_is_refused(tmp_path: Path) -> None:
    """No repository: a clear "not a git repository" error naming the path."""
    with pytest.raises(InvalidError, match="not a git repository") as caught:
        read_snapshot(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    """A path that does not exist is not a repository either."""
    with pytest.raises(InvalidError, match=r"not a git repository: .* does not exist"):
        GitRepo.find(tmp_path / "nowhere")


def test_a_repository_without_commits_is_refused(tmp_path: Path) -> None:
    """Before the first commit there is nothing to publish, and the error says what to do."""
    repo = AppRepo.init(tmp_path)
    repo.write_app()
    with pytest.raises(InvalidError) as caught:
        read_snapshot(tmp_path)
    assert caught.value.cause == "the repository has no commit yet: commit your app first"


@pytest.mark.parametrize("change", ["untracked", "modified", "staged", "deleted", "renamed"])
def test_uncommitted_changes_are_refused_and_listed(tmp_path: Path, change: str) -> None:
    """Any uncommitted change, untracked files included, stops publishing; paths in details."""
    repo = hello_world_repo(tmp_path)
    main = "components/frontend/main.py"
    if change == "untracked":
        repo.write("components/frontend/helper.py", "x = 1\n")
        expected = "components/frontend/helper.py"
    elif change == "modified":
        repo.write(main, "print('changed')\n")
        expected = main
    elif change == "staged":
        repo.write(main, "print('changed')\n")
        repo.git("add", main)
        expected = main
    elif change == "deleted":
        (tmp_path / main).unlink()
        expected = main
    else:
        repo.git("mv", main, "components/frontend/app.py")
        expected = "components/frontend/app.py"
    with pytest.raises(InvalidError) as caught:
        read_snapshot(tmp_path)
    error = caught.value
    assert error.cause == "uncommitted changes present: commit or stash them before publishing"
    assert error.details["paths"] == [expected]
    assert error.details["count"] == 1


def test_the_dirty_list_is_cut_to_a_few_paths(tmp_path: Path) -> None:
    """Many changed files: a few shown, all counted."""
    repo = hello_world_repo(tmp_path)
    for index in range(8):
        repo.write(f"notes/{index}.txt", "x")
    with pytest.raises(InvalidError) as caught:
        read_snapshot(tmp_path)
    assert len(caught.value.details["paths"]) == 5
    assert caught.value.details["count"] == 8


def test_ignored_files_do_not_make_the_tree_dirty(tmp_path: Path) -> None:
    """Files .gitignore excludes are neither changes nor part of the app."""
    repo = hello_world_repo(tmp_path)
    repo.write("components/frontend/__pycache__/main.cpython-311.pyc", b"\x00")
    repo.write("debug.log", "noise")
    assert GitRepo.find(tmp_path).dirty_paths() == []
    read_snapshot(tmp_path)


def test_a_snapshot_records_commit_branch_tags_and_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commit id and committer time (in UTC), branch, tags at HEAD and origin are read."""
    repo = hello_world_repo(tmp_path)
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2024-05-01T12:00:00+02:00")
    repo.commit("dated")
    repo.git("remote", "add", "origin", "https://user:s3cret@example.com/org/hello.git")
    repo.git("tag", "v1")
    snapshot = read_snapshot(tmp_path / "components")
    assert snapshot.commit == repo.head()
    assert snapshot.commit_time.tzinfo == UTC
    assert snapshot.commit_time == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert snapshot.branch == "main"
    assert snapshot.tags == ("v1",)
    assert snapshot.repo_url == "https://example.com/org/hello.git"
    assert snapshot.app.name == "hello-world"
    assert snapshot.app.title == "Hello World"
    assert snapshot.app.description == "A simple app"
    assert [c.name for c in snapshot.components] == ["backend", "frontend"]


def test_a_detached_head_has_no_branch(tmp_path: Path) -> None:
    """On a detached HEAD the branch is None (the name then falls back to tag or commit)."""
    repo = hello_world_repo(tmp_path)
    repo.git("checkout", "-q", "--detach")
    assert read_snapshot(tmp_path).branch is None


def test_a_branch_with_slashes_is_recorded_by_its_last_segment(tmp_path: Path) -> None:
    """feature/login is recorded as login, as upstream: it becomes a label value."""
    repo = hello_world_repo(tmp_path)
    repo.git("checkout", "-q", "-b", "feature/login")
    assert read_snapshot(tmp_path).branch == "login"


def test_the_app_directory_may_be_below_the_repository_root(tmp_path: Path) -> None:
    """An app in a subdirectory is found from any directory inside it."""
    repo = AppRepo.init(tmp_path)
    repo.write_app(app_dir="apps/hello")
    repo.write("README.md", "monorepo\n")
    repo.commit()
    snapshot = read_snapshot(tmp_path / "apps" / "hello" / "components" / "backend")
    assert snapshot.app_dir == (tmp_path / "apps" / "hello").resolve()
    assert [c.directory for c in snapshot.components] == [
        "apps/hello/components/backend",
        "apps/hello/components/frontend",
    ]


def test_no_app_yaml_up_to_the_root_is_an_error(tmp_path: Path) -> None:
    """Without app.yaml the error says where it looked."""
    repo = AppRepo.init(tmp_path)
    repo.write("README.md", "no app\n")
    repo.commit()
    with pytest.raises(InvalidError, match=r"no app\.yaml found in .* up to the repository root"):
        find_app_dir(GitRepo.find(tmp_path), tmp_path)


def test_an_app_without_components_is_an_error(tmp_path: Path) -> None:
    """An app.yaml alone is not publishable."""
    repo = AppRepo.init(tmp_path)
    repo.write_app(components={})
    repo.commit()
    with pytest.raises(InvalidError, match=r"no components found: expected components/<name>/"):
        read_snapshot(tmp_path)


def test_directories_without_main_py_are_skipped_and_listed(tmp_path: Path) -> None:
    """components/docs/ without a main.py is no component; the snapshot says so."""
    repo = hello_world_repo(tmp_path)
    repo.write("components/docs/README.md", "docs\n")
    repo.write("components/README.md", "overview\n")
    repo.commit()
    snapshot = read_snapshot(tmp_path)
    assert [c.name for c in snapshot.components] == ["backend", "frontend"]
    assert snapshot.skipped == ("components/docs",)


def test_component_names_are_cleaned_and_must_stay_distinct(tmp_path: Path) -> None:
    """Directory names become DNS labels; two that clean to one name are an error."""
    repo = AppRepo.init(tmp_path)
    repo.write_app(components={"Web_UI": {"type": "KubeFox"}})
    repo.commit()
    assert [c.name for c in read_snapshot(tmp_path).components] == ["web-ui"]
    repo.write("components/web-ui/main.py", "print()\n")
    repo.commit()
    with pytest.raises(InvalidError, match='both make component "web-ui"'):
        read_snapshot(tmp_path)


def test_an_uncommitted_but_ignored_app_yaml_is_refused(tmp_path: Path) -> None:
    """app.yaml is read from the commit; one git does not track is an error."""
    repo = AppRepo.init(tmp_path)
    repo.write_app()
    repo.write(".gitignore", "app.yaml\n")
    repo.commit()
    with pytest.raises(InvalidError, match=r"app\.yaml is not committed"):
        read_snapshot(tmp_path)


def test_load_app_reads_name_title_description_and_registry() -> None:
    """The four upstream fields; optional ones may be absent."""
    app = load_app(b"name: hello-world\ntitle: Hi\ncontainerRegistry: ghcr.io/org\n")
    assert (app.name, app.title, app.description, app.container_registry) == (
        "hello-world",
        "Hi",
        None,
        "ghcr.io/org",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title: x\n", "name is required"),
        ("name: Hello World\n", 'name "Hello World" is not a DNS label'),
        ("name: hello\nowner: me\n", "unknown field.* owner"),
        ("name: hello\ntitle: [1]\n", "title must be a string"),
        ("- name\n", "must be a mapping"),
        ("", "must be a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_load_app_rejects_bad_app_yaml_clearly(text: str, message: str) -> None:
    """Every problem names app.yaml and says what is wrong."""
    with pytest.raises(InvalidError, match=message) as caught:
        load_app(text.encode())
    assert "app.yaml" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "stripped"),
    [
        ("https://tok@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://u:p@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
    ],
)
def test_origin_urls_lose_their_credentials(url: str, stripped: str) -> None:
    """Tokens in an https remote never reach the AppDeployment; ssh user names stay."""
    assert strip_credentials(url) == stripped
