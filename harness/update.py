"""The `copier update` session's plumbing: the first release as a template repository, a
team's changes to the service generated from it, and what the update must keep.

Loaded by the noxfile by path; needs nothing but nox and the standard library.
"""

import ast
import importlib.util
import shutil
from pathlib import Path
from typing import Any

import nox

# Where a clone has no tags (some CI checkouts fetch none): the commit the first
# release's tag points at (the update session starts there), if the history holds it.
RELEASE_COMMITS = {"0.1.0": "969cda627247098ccf5df2c8ce73b34f78285bc4"}

USER_ROUTER = '''"""Items: added by the team after the service was generated."""

from fastapi import APIRouter

router = APIRouter(prefix="/items", tags=["items"])


@router.get("")
async def list_items() -> list[str]:
    return ["first"]
'''
USER_README = "This is our team's backend: read docs/onboarding.md first."


def release_versions(root: Path) -> list[str]:
    """Versions in ROOT's CHANGELOG.md, newest first: the current release, then the previous ones
    (an "Unreleased" heading left out: this tree then stands in for the latest release)."""
    lines = (root / "CHANGELOG.md").read_text().splitlines()
    return [line.split()[1] for line in lines if line.startswith("## ") and line.split()[1][:1].isdigit()]


def git(session: nox.Session, *args: str) -> None:
    session.run("git", *args, external=True, silent=True)


def commit_all(session: nox.Session, message: str) -> None:
    git(session, "add", "-A")
    git(session, "commit", "-q", "--no-verify", "-m", message)


def set_git_identity(session: nox.Session) -> None:
    """Commits need an author; a machine without one configured gets a placeholder."""
    for name, value in (("NAME", "Update Check"), ("EMAIL", "update-check@example.com")):
        for role in ("AUTHOR", "COMMITTER"):
            session.env.setdefault(f"GIT_{role}_{name}", value)


def copy_tree(session: nox.Session, source: Path, destination: Path) -> None:
    """The files git sees in SOURCE (tracked and untracked, not ignored), copied to DESTINATION."""
    with session.chdir(source):
        listing = session.run(
            "git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", external=True, silent=True
        )
    assert isinstance(listing, str)
    for name in filter(None, listing.split("\0")):
        if (source / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, destination / name)


def moved_files(root: Path) -> dict[str, list[tuple[str, str, str]]]:
    """The files each release moved, from the migration that removes their old copies."""
    spec = importlib.util.spec_from_file_location("remove_moved_files", root / "migrations" / "remove_moved_files.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.MOVED)


def undo_moves(root: Path, template: Path, version: str) -> None:
    """Makes a copy of ROOT's tree look like the release before VERSION: moved files go back."""
    for old, new, _ in moved_files(root).get(version, []):
        old_path, new_path = template / "template" / old, template / "template" / new
        old_path.parent.mkdir(parents=True, exist_ok=True)
        new_path.rename(old_path)
        old_module, new_module = (p.removeprefix("backend/").removesuffix(".py").replace("/", ".") for p in (old, new))
        for source in (template / "template").rglob("*.py*"):
            text = source.read_text()
            if new_module in text:
                source.write_text(text.replace(new_module, old_module))


def release_commit(session: nox.Session, version: str) -> str:
    """VERSION's tag, else its commit in RELEASE_COMMITS if the history holds it, else ""."""
    tags = session.run("git", "tag", "--list", version, external=True, silent=True)
    if isinstance(tags, str) and tags.strip() == version:
        return version
    commit = RELEASE_COMMITS.get(version)
    if commit is None:
        return ""
    found = session.run("git", "cat-file", "-t", commit, external=True, silent=True, success_codes=[0, 128])
    return commit if isinstance(found, str) and found.strip() == "commit" else ""


def first_release(session: nox.Session, root: Path, template: Path) -> str:
    """The first release of ROOT as a git repository at TEMPLATE, tagged; returns its version."""
    versions = release_versions(root)
    first = versions[-1]
    template.mkdir(parents=True)
    if release := release_commit(session, first):
        session.log(f"Release {first}: {'its tag' if release == first else 'its commit ' + release[:12]}")
        archive = Path(session.create_tmp()) / "previous.tar"
        git(session, "archive", "--format=tar", f"--output={archive}", release)
        shutil.unpack_archive(archive, template)
    else:
        session.log(f"No tag or commit of {first} here: this tree with the later releases' moves undone stands in")
        copy_tree(session, root, template)
        for version in versions[:-1]:
            undo_moves(root, template, version)
    with session.chdir(template):
        git(session, "init", "-q")
        commit_all(session, f"template {first}")
        git(session, "tag", first)
    return first


def release_this_tree(session: nox.Session, root: Path, template: Path) -> str:
    """The template repository at TEMPLATE moves on to ROOT's tree, tagged; returns the version."""
    current = release_versions(root)[0]
    for child in template.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    copy_tree(session, root, template)
    with session.chdir(template):
        commit_all(session, f"template {current}")
        git(session, "tag", current)
    return current


def check_recorded(session: nox.Session, service: Path, version: str) -> None:
    answers = (service / ".copier-answers.yml").read_text()
    if f"_commit: {version}\n" not in answers:
        session.error(f"copier recorded another _commit than {version}:\n{answers}")


def commit_team_changes(session: nox.Session, service: Path, package_manager: str, env: dict[str, str | None]) -> None:
    """The generated service committed, then what a team starting the next epic changes, committed:
    a router, a setting, a dependency (added with PACKAGE_MANAGER in ENV), the README."""
    with session.chdir(service):
        git(session, "init", "-q")
        commit_all(session, "generated from the template")
    backend = service / "backend"
    (backend / "app" / "api" / "v1" / "items.py").write_text(USER_ROUTER)
    router = backend / "app" / "api" / "v1" / "router.py"
    text = router.read_text().replace("from app.api.v1 import health\n", "from app.api.v1 import health, items\n")
    router.write_text(text + "api_router.include_router(items.router)\n")
    config = backend / "app" / "core" / "config.py"
    marker = "    READINESS_TIMEOUT: float = Field(default=2.0, gt=0, le=30)\n"
    config.write_text(
        config.read_text().replace(marker, marker + "    ITEMS_PAGE_SIZE: int = Field(default=50, ge=1)\n")
    )
    env_example = backend / ".env.example"
    env_example.write_text(env_example.read_text() + "# Items per page of GET /api/v1/items.\n# ITEMS_PAGE_SIZE=50\n")
    readme = backend / "README.md"
    paragraphs = readme.read_text().split("\n\n")
    paragraphs[1] = USER_README
    readme.write_text("\n\n".join(paragraphs))
    with session.chdir(backend):
        session.run(package_manager, "add", "tenacity>=9.0", external=True, env=env)
    with session.chdir(service):
        commit_all(session, "team changes")


def conflicts(service: Path) -> list[str]:
    """What `copier update` left unmerged: .rej files, conflict markers."""
    files = [p for p in service.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts]
    problems = [f"{p.relative_to(service)}: rejected hunks" for p in files if p.suffix == ".rej"]
    problems += [
        f"{p.relative_to(service)}: conflict markers"
        for p in files
        if p.suffix in {".py", ".md", ".toml", ".yml", ".example", ""} and "<<<<<<< " in p.read_text(errors="ignore")
    ]
    return problems


def copier_update(session: nox.Session, service: Path, answers: dict[str, Any] | None = None) -> None:
    """`copier update` of SERVICE, with ANSWERS given as --data (the others as recorded)."""
    data = [f"--data={key}={value}" for key, value in (answers or {}).items()]
    with session.chdir(service):
        # --trust: updating across 0.2.0 runs its migration (see CHANGELOG.md). Copier's
        # default conflict mode (inline): a hunk whose context moved is 3-way merged, as
        # router.py's must be from 0.4.0 on; an unresolved one leaves markers (failed after).
        session.run("copier", "update", "--defaults", "--trust", *data, external=False)


def committed_lock(session: nox.Session, service: Path) -> tuple[str, str]:
    """The lock file's path in SERVICE and its text as last committed."""
    name = next(f"backend/{n}" for n in ("uv.lock", "poetry.lock") if (service / "backend" / n).exists())
    with session.chdir(service):
        text = session.run("git", "show", f"HEAD:{name}", external=True, silent=True)
    assert isinstance(text, str)
    return name, text


def check_lock_kept(session: nox.Session, service: Path, versions: Any) -> None:
    """After `make lock`: the team's pins (the dependency it added among them) are the ones it had."""
    name, before = committed_lock(session, service)
    after = versions((service / name).read_text())
    moved = {n: (v, after.get(n)) for n, v in versions(before).items() if n == "tenacity" and after.get(n) != v}
    if "tenacity" not in after or moved:
        session.error(f"make lock after copier update did not keep the team's pin of tenacity: {moved or after}")
    session.log(f"make lock kept the team's pins: tenacity {after['tenacity']}")


def check_update(session: nox.Session, service: Path, current: str) -> None:
    """No conflict left, every team change kept, every template change and migration applied."""
    problems = conflicts(service)
    backend = service / "backend"
    lock, team_lock = committed_lock(session, service)
    expectations = {
        "the team's router module is kept": (backend / "app/api/v1/items.py").read_text() == USER_ROUTER,
        "the team's router stays registered": "include_router(items.router)"
        in (backend / "app/api/v1/router.py").read_text(),
        "the team's setting is kept": "ITEMS_PAGE_SIZE" in (backend / "app/core/config.py").read_text(),
        "the team's setting stays documented": "ITEMS_PAGE_SIZE" in (backend / ".env.example").read_text(),
        "the team's dependency is kept": "tenacity" in (backend / "pyproject.toml").read_text(),
        "the team's README paragraph is kept": USER_README in (backend / "README.md").read_text(),
        "the team's lock is kept as it was": (service / lock).read_text() == team_lock,
        "the moved module arrived": (backend / "app/core/openapi.py").is_file(),
        "the migration removed the module's old copy": not (backend / "app/exceptions/openapi.py").exists(),
        "main.py uses the module's new place": "from app.core.openapi import" in (backend / "app/main.py").read_text(),
        f"the answers file records {current}": f"_commit: {current}\n" in (service / ".copier-answers.yml").read_text(),
    }
    problems += [what for what, ok in expectations.items() if not ok]
    if problems:
        session.error("copier update went wrong:\n  " + "\n  ".join(problems))
    session.log("copier update: no conflicts; every team change kept; every template change arrived")


# Two resources a team generates after the update: the second refers to the first, and
# between them they use every kind of field and flag of `make resource`.
RESOURCES = {
    "agents": (
        "NAME=agent",
        "FIELDS=name:str(3..80):unique:sort description:text? voice:enum(alloy,echo,verse)=alloy:filter "
        "config:json={} temperature:float(0..2)=0.7 max_sessions:int(1..100)=10:sort enabled:bool=true:filter "
        "owner_id:uuid:filter",
    ),
    "agent_sessions": (
        "NAME=agent_session",
        "FIELDS=agent_id:ref(agents):cascade:filter title:str(80) started_at:datetime?:sort held_on:date? "
        "transcript:json(100000)?",
    ),
}
# The next release changes files that generated resources depend on or that the generator
# edits: (file in template/, the line after which it adds one, the line it adds).
NEXT_RELEASE = [
    (
        "backend/app/api/v1/router.py",
        "api_router = APIRouter(\n",
        "    # Options for every v1 route go here too: dependencies=[Depends(...)] for authentication, say.\n",
    ),
    (
        "backend/app/api/deps.py",
        "from app.db.session import get_db_session, get_engine, get_read_session\n",
        "\n# One alias per dependency; its provider function lives beside what it provides.\n",
    ),
    (
        "backend/alembic/env.py",
        "def configure(**options: Any) -> None:\n",
        "    # No include_schemas: the migrations manage the default schema only (tests keep theirs apart).\n",
    ),
    (
        "backend/tests/conftest.py",
        "    async def session_in_test_transaction() -> AsyncIterator[AsyncSession]:\n",
        "        # Every alias on get_db_session (DbSession, and a team's own) gets this session.\n",
    ),
]


def generate_resources(session: nox.Session, service: Path, env: dict[str, str | None]) -> None:
    """The update committed; then two resources, generated with `make resource` and committed."""
    with session.chdir(service):
        commit_all(session, "copier update")
        for arguments in RESOURCES.values():
            session.run("make", "resource", *arguments, external=True, env=env)
        commit_all(session, "make resource, twice")


def release_next(session: nox.Session, template: Path, current: str) -> str:
    """A later release of the template repository at TEMPLATE (NEXT_RELEASE's changes), tagged."""
    version = f"{current}.post1"
    for name, after, line in NEXT_RELEASE:
        path = template / "template" / name
        if not path.exists():  # a file of the service that the answers shape: its template
            path = path.with_name(path.name + ".jinja")
        text = path.read_text()
        if after not in text:
            session.error(f"{name} has no line {after.strip()!r} any more: update NEXT_RELEASE in harness/update.py")
        path.write_text(text.replace(after, after + line, 1))
    with session.chdir(template):
        commit_all(session, f"template {version}")
        git(session, "tag", version)
    return version


def registered(router: str) -> set[str]:
    """The modules router.py imports from app.api.v1 and whose router it includes (none if it does not parse)."""
    try:
        tree = ast.parse(router)
    except SyntaxError:  # conflict markers, reported on their own
        return set()
    lines = [node for node in tree.body if isinstance(node, ast.ImportFrom) and node.module == "app.api.v1"]
    imported = {alias.name for line in lines for alias in line.names}
    return {name for name in imported if f"api_router.include_router({name}.router)" in router}


def lacks(service: Path, name: str, line: str) -> bool:
    """NAME (in SERVICE) lacks LINE."""
    return line not in (service / name).read_text()


def check_resources_kept(session: nox.Session, service: Path, version: str) -> None:
    """No conflict; the generated files untouched, both resources still registered; the release arrived."""
    problems = conflicts(service)
    with session.chdir(service):
        status = session.run("git", "status", "--porcelain", external=True, silent=True)
    assert isinstance(status, str)
    generated = ("app/models/", "app/schemas/agent", "app/api/v1/agent", "alembic/versions/", "tests/api/v1/test_agent")
    touched = [line[3:] for line in status.splitlines() if any(path in line for path in generated)]
    problems += [f"copier update changed {path}" for path in touched]
    missing = set(RESOURCES) - registered((service / "backend/app/api/v1/router.py").read_text())
    problems += [f"{plural} is no longer registered in router.py" for plural in sorted(missing)]
    problems += [f"{name}: the release's line is missing" for name, _, new in NEXT_RELEASE if lacks(service, name, new)]
    if f"_commit: {version}\n" not in (service / ".copier-answers.yml").read_text():
        problems.append(f"the answers file does not record {version}")
    if problems:
        session.error("copier update after make resource went wrong:\n  " + "\n  ".join(problems))
    session.log("copier update after make resource: no conflicts, both resources kept and registered, release applied")
