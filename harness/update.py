"""The `copier update` session's plumbing: the first release as a template repository, a
team's changes to the service generated from it, and what the update must keep.

Loaded by the noxfile by path; needs nothing but nox and the standard library.
"""

import importlib.util
import shutil
from pathlib import Path

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
    """Versions in ROOT's CHANGELOG.md, newest first: the current release, then the previous ones."""
    lines = (root / "CHANGELOG.md").read_text().splitlines()
    return [line.split()[1] for line in lines if line.startswith("## ")]


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


def check_update(session: nox.Session, service: Path, current: str) -> None:
    """No conflict left, every team change kept, every template change and migration applied."""
    files = [p for p in service.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts]
    problems = [f"{p.relative_to(service)}: rejected hunks" for p in files if p.suffix == ".rej"]
    problems += [
        f"{p.relative_to(service)}: conflict markers"
        for p in files
        if p.suffix in {".py", ".md", ".toml", ".yml", ".example", ""} and "<<<<<<< " in p.read_text(errors="ignore")
    ]
    backend = service / "backend"
    expectations = {
        "the team's router module is kept": (backend / "app/api/v1/items.py").read_text() == USER_ROUTER,
        "the team's router stays registered": "include_router(items.router)"
        in (backend / "app/api/v1/router.py").read_text(),
        "the team's setting is kept": "ITEMS_PAGE_SIZE" in (backend / "app/core/config.py").read_text(),
        "the team's setting stays documented": "ITEMS_PAGE_SIZE" in (backend / ".env.example").read_text(),
        "the team's dependency is kept": "tenacity" in (backend / "pyproject.toml").read_text(),
        "the team's README paragraph is kept": USER_README in (backend / "README.md").read_text(),
        "the moved module arrived": (backend / "app/core/openapi.py").is_file(),
        "the migration removed the module's old copy": not (backend / "app/exceptions/openapi.py").exists(),
        "main.py uses the module's new place": "from app.core.openapi import" in (backend / "app/main.py").read_text(),
        f"the answers file records {current}": f"_commit: {current}\n" in (service / ".copier-answers.yml").read_text(),
    }
    problems += [what for what, ok in expectations.items() if not ok]
    if problems:
        session.error("copier update went wrong:\n  " + "\n  ".join(problems))
    session.log("copier update: no conflicts; every team change kept; every template change arrived")
