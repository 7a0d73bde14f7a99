"""The repository stands alone: a clone anywhere collects the same tests as this checkout and skips
none more, and what the code and the docs cite is in the repository.

Fixtures live in the repository (``tests/fixtures``), never beside it: the SMART tests once read
their captures from ``../shared``, so a clone elsewhere collected 301 tests instead of 468 and
skipped every SMART test.  The clone is made from a snapshot of the working tree as it is (tracked
and untracked files, ``.gitignore`` honoured), so uncommitted work is compared too; the snapshot
uses a scratch index and the clone's object store, leaving the checkout's ``.git`` untouched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
Collection = dict[str, dict[str, str | None]]
"""``tests``: node id -> skip reason or None; ``skipped_modules``: node id -> why."""

REPORTER = textwrap.dedent(
    '''
    """Writes each collected test's node id, with the reason of any skip mark that applies."""

    import json
    import os


    def skip_reason(item):
        for mark in item.iter_markers():
            if mark.name == "skip":
                return mark.kwargs.get("reason") or (mark.args[0] if mark.args else "skip")
            if mark.name == "skipif":
                condition = mark.args[0] if mark.args else mark.kwargs.get("condition")
                if isinstance(condition, str):
                    return "skipif(" + condition + ")"  # evaluated only when run: shown as is
                if condition:
                    return mark.kwargs.get("reason", "skipif")
        return None


    COLLECTED = {"tests": {}, "skipped_modules": {}}


    def pytest_collectreport(report):
        if report.skipped:
            COLLECTED["skipped_modules"][report.nodeid] = str(report.longrepr)


    def pytest_collection_modifyitems(items):
        COLLECTED["tests"] = {item.nodeid: skip_reason(item) for item in items}


    def pytest_collection_finish(session):
        with open(os.environ["GARDIEN_COLLECTED"], "w") as out:
            json.dump(COLLECTED, out)
    '''
)


def git_env(scratch: Path) -> dict[str, str]:
    """Git's environment for the test: a global config of its own, which also trusts the checkout
    when its owner is not the user running the tests (``sudo make test`` on a user's clone)."""
    config = scratch / "gitconfig"
    config.write_text(
        f"[safe]\n\tdirectory = {REPO}\n\tdirectory = {REPO / '.git'}\n"
        "[user]\n\tname = test\n\temail = test@localhost\n"
    )
    return {**os.environ, "GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


def snapshot(scratch: Path, clone: Path, env: dict[str, str]) -> str:
    """A commit of the checkout's working tree in ``clone``: made with a scratch index, its objects
    written to the clone's store, so that nothing of the checkout's ``.git`` changes."""
    objects = (REPO / git("rev-parse", "--git-path", "objects", cwd=REPO, env=env)).resolve()
    env = {
        **env,
        "GIT_INDEX_FILE": str(scratch / "index"),
        "GIT_OBJECT_DIRECTORY": str(clone / ".git" / "objects"),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects),
    }
    git("read-tree", "HEAD", cwd=REPO, env=env)
    git("add", "--all", cwd=REPO, env=env)
    tree = git("write-tree", cwd=REPO, env=env)
    return git("commit-tree", tree, "-p", "HEAD", "-m", "working tree snapshot", cwd=REPO, env=env)


def collect(root: Path, reporter_dir: Path, out: Path) -> Collection:
    """``pytest --collect-only`` run in ``root`` on ``root``'s own code."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{root}{os.pathsep}{reporter_dir}",
        "GARDIEN_COLLECTED": str(out),
    }
    pytest_argv = ["-p", "no:cacheprovider", "-p", "gardien_collected", "--collect-only", "-q"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_argv],
        check=False,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"collection failed in {root}:\n{done.stdout}\n{done.stderr}"
    collected: Collection = json.loads(out.read_text())
    return collected


@pytest.fixture(scope="module")
def collections(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Collection, Collection]:
    if not (REPO / ".git").exists():
        pytest.skip(f"{REPO} is not a git checkout: there is nothing to clone")
    scratch = tmp_path_factory.mktemp("clean-clone")
    (scratch / "gardien_collected.py").write_text(REPORTER)
    clone = scratch / "gardien"
    env = git_env(scratch)
    git("clone", "--quiet", "--no-checkout", str(REPO), str(clone), cwd=scratch, env=env)
    commit = snapshot(scratch, clone, env)
    git("checkout", "--quiet", "--detach", commit, cwd=clone, env=env)
    assert not (clone.parent / "shared").exists()  # nothing of the checkout's surroundings

    return (
        collect(REPO, scratch, scratch / "checkout.json"),
        collect(clone, scratch, scratch / "clone.json"),
    )


def test_a_clean_clone_elsewhere_collects_the_same_tests(
    collections: tuple[Collection, Collection],
) -> None:
    checkout, clone = collections

    counts = {"checkout": len(checkout["tests"]), "clone": len(clone["tests"])}
    assert counts["clone"] == counts["checkout"], counts
    assert set(clone["tests"]) == set(checkout["tests"]), {
        "only in the checkout": sorted(set(checkout["tests"]) - set(clone["tests"])),
        "only in the clone": sorted(set(clone["tests"]) - set(checkout["tests"])),
    }
    assert counts["checkout"] > 400  # the whole suite, not an empty collection


def test_a_clean_clone_skips_nothing_the_checkout_runs(
    collections: tuple[Collection, Collection],
) -> None:
    checkout, clone = collections

    skipped_in_clone = {test: why for test, why in clone["tests"].items() if why is not None}
    skipped_in_checkout = {test: why for test, why in checkout["tests"].items() if why is not None}
    assert skipped_in_clone == skipped_in_checkout
    assert clone["skipped_modules"] == checkout["skipped_modules"]


OUTSIDE_DOCUMENTS = re.compile(r"(?<![\w/.])(?:LAB|DESIGN|PEERS)\.md\b")
"""Design notes that lived beside the repository, never in it (docs/ holds what they said)."""
LAB_CITATION = re.compile(r"docs/lab\.md\s+sections?\s+([\d.]*\d)(?:\s+and\s+([\d.]*\d))?")
LAB_SECTION = re.compile(r"^(?:## )?(\d+(?:\.\d+)?)\. ", re.MULTILINE)
"""A section (``## 5. Services``) or a numbered item (``9.8. PID 1 reaps...``) of docs/lab.md."""


def cited_texts() -> dict[str, str]:
    """Every module and document of the repository (not the fixtures: data, not citations)."""
    texts = {}
    for pattern in ("*.py", "*.md"):
        for path in REPO.rglob(pattern):
            relative = path.relative_to(REPO)
            hidden = any(part.startswith(".") for part in relative.parts)
            if (
                not hidden
                and relative.parts[:2] != ("tests", "fixtures")
                and path != Path(__file__)
            ):
                texts[relative.as_posix()] = path.read_text()
    return texts


def test_nothing_cites_a_document_outside_the_repository() -> None:
    found = [
        f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match.group()}"
        for name, text in sorted(cited_texts().items())
        for match in OUTSIDE_DOCUMENTS.finditer(text)
    ]

    assert not found, "cite docs/lab.md or docs/architecture.md instead:\n" + "\n".join(found)


def test_every_cited_section_of_the_lab_notes_exists() -> None:
    sections = set(LAB_SECTION.findall((REPO / "docs" / "lab.md").read_text()))
    cited = {
        (name, number)
        for name, text in cited_texts().items()
        for match in LAB_CITATION.finditer(text)
        for number in match.groups()
        if number
    }

    assert {"0", "5", "9", "9.8", "10"} <= sections
    assert cited, "no citation of docs/lab.md found: is the pattern still right?"
    assert sorted(c for c in cited if c[1] not in sections) == []
