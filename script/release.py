"""Cut a release: the HACS zip, checked in a fresh Home Assistant, then version and changelog.

    script/release 0.2.0              build dist/syscom_ress.zip for 0.2.0, install it into a fresh
                                      Home Assistant config and load it on the simulator (each
                                      test venv), then write 0.2.0 into manifest.json and
                                      pyproject.toml and move the changelog's "Unreleased" under
                                      "0.2.0 - today"
    script/release 0.2.0 --dry-run    build and check only, change no file
    script/release 0.1.0              the version released already: build and check its zip again

Nothing is committed, tagged or uploaded, and nothing needs the network (the check uses the
venvs of script/bootstrap); the commands to publish are printed at the end. Standard library
only: the build runs on any Python 3.11+, the check on the project's venvs.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from datetime import date
import json
import os
from pathlib import Path
import re
import subprocess
import sys
import zipfile

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "syscom_ress"
INTEGRATION = Path("custom_components") / DOMAIN
REPOSITORY = "https://github.com/syscom-ress/ha-syscom-ress"
SKIPPED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
"""Every entry's timestamp: the same tree gives the same zip, byte for byte."""
VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:(b|rc)(\d+))?$")
UNRELEASED = "## [Unreleased]"
CHECK_TEST = "tests/test_release.py::test_release_zip_installs_and_loads"
VENVS = (".venv", ".venv-min")


class ReleaseError(Exception):
    """Something that stops the release, said in one line."""


# -- versions ---------------------------------------------------------------------------------


def version_key(version: str) -> tuple[int, int, int, int, int]:
    """Sortable form of ``X.Y.Z``, ``X.Y.ZbN`` or ``X.Y.ZrcN`` (a final release sorts last)."""
    match = VERSION.match(version)
    if match is None:
        raise ReleaseError(f"{version!r} is not a version like 1.2.3, 1.2.3b1 or 1.2.3rc1")
    major, minor, patch, stage, number = match.groups()
    rank = {"b": 0, "rc": 1, None: 2}[stage]
    return int(major), int(minor), int(patch), rank, int(number or 0)


def manifest_version(root: Path = ROOT) -> str:
    """The version in manifest.json."""
    return str(json.loads((root / INTEGRATION / "manifest.json").read_text("utf-8"))["version"])


_PROJECT = re.compile(r"^\[project\]\n(?P<body>.*?)(?=^\[|\Z)", re.M | re.S)
_VERSION_LINE = re.compile(r'^(version\s*=\s*")([^"]+)(")', re.M)


def pyproject_version(root: Path = ROOT) -> str:
    """The ``version`` of pyproject.toml's ``[project]`` table."""
    project = _PROJECT.search((root / "pyproject.toml").read_text("utf-8"))
    line = _VERSION_LINE.search(project["body"]) if project else None
    if line is None:
        raise ReleaseError("pyproject.toml has no version in [project]")
    return line.group(2)


def set_versions(version: str, root: Path = ROOT) -> None:
    """Write ``version`` into manifest.json and pyproject.toml, changing nothing else."""
    manifest = root / INTEGRATION / "manifest.json"
    data = json.loads(manifest.read_text("utf-8"))
    data["version"] = version
    manifest.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
    path = root / "pyproject.toml"
    text = path.read_text("utf-8")
    project = _PROJECT.search(text)
    if project is None:
        raise ReleaseError("pyproject.toml has no [project] table")
    body = _VERSION_LINE.sub(rf"\g<1>{version}\g<3>", project["body"], count=1)
    path.write_text(text[: project.start("body")] + body + text[project.end("body") :], "utf-8")


# -- the changelog ----------------------------------------------------------------------------


def released_versions(changelog: str) -> list[str]:
    """Versions with a section of their own, newest first."""
    return re.findall(r"^## \[(\d[^\]]*)\]", changelog, re.M)


def unreleased_notes(changelog: str) -> str:
    """What the "Unreleased" section lists (empty when nothing)."""
    start = changelog.find(UNRELEASED)
    if start < 0:
        raise ReleaseError(f"CHANGELOG.md has no '{UNRELEASED}' section")
    body = changelog[start + len(UNRELEASED) :]
    end = re.search(r"^## \[", body, re.M)
    return (body[: end.start()] if end else body).strip()


def notes_of(changelog: str, version: str) -> str:
    """The text of one version's section (the GitHub release's notes)."""
    match = re.search(
        rf"^## \[{re.escape(version)}\][^\n]*\n(?P<notes>.*?)(?=^## \[|^\[Unreleased\]: |\Z)",
        changelog,
        re.M | re.S,
    )
    if match is None:
        raise ReleaseError(f"CHANGELOG.md has no section for {version}")
    return match["notes"].strip() + "\n"


def release_changelog(changelog: str, version: str, day: date) -> str:
    """Move the "Unreleased" notes under ``## [version] - day``; update the compare links."""
    notes = unreleased_notes(changelog)
    if not notes:
        raise ReleaseError("nothing under '## [Unreleased]' in CHANGELOG.md: what changed?")
    previous = released_versions(changelog)
    start = changelog.index(UNRELEASED) + len(UNRELEASED)
    body = changelog[start:]
    end = re.search(r"^## \[", body, re.M)
    rest = body[end.start() :] if end else ""
    text = (
        f"{changelog[:start]}\n\n## [{version}] - {day.isoformat()}\n\n{notes}\n\n{rest}"
    ).rstrip() + "\n"
    return _links(text, version, previous[0] if previous else None)


def _links(text: str, version: str, previous: str | None) -> str:
    unreleased = f"[Unreleased]: {REPOSITORY}/compare/v{version}...HEAD"
    if previous is None:
        this = f"[{version}]: {REPOSITORY}/releases/tag/v{version}"
    else:
        this = f"[{version}]: {REPOSITORY}/compare/v{previous}...v{version}"
    if re.search(r"^\[Unreleased\]: ", text, re.M):
        return re.sub(r"^\[Unreleased\]: .*$", f"{unreleased}\n{this}", text, count=1, flags=re.M)
    return f"{text}\n{unreleased}\n{this}\n"


# -- the zip ----------------------------------------------------------------------------------


def integration_files(root: Path = ROOT) -> list[Path]:
    """The files of custom_components/syscom_ress/, relative to it, caches left out."""
    folder = root / INTEGRATION
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_dir() or SKIPPED_DIRS.intersection(relative.parts):
            continue
        if path.suffix in SKIPPED_SUFFIXES or path.name == ".DS_Store":
            continue
        files.append(relative)
    return files


def zip_name(root: Path = ROOT) -> str:
    """The asset name HACS downloads (hacs.json ``filename``)."""
    hacs = json.loads((root / "hacs.json").read_text("utf-8"))
    if not hacs.get("zip_release") or not hacs.get("filename"):
        raise ReleaseError("hacs.json must set zip_release: true and filename")
    return str(hacs["filename"])


def build_zip(out_dir: Path, version: str | None = None, root: Path = ROOT) -> Path:
    """Write the HACS zip: the integration's files at the zip root, plus LICENSE.

    HACS unpacks the asset into ``custom_components/syscom_ress/`` as it is, so ``manifest.json``
    sits at the top of the zip. With ``version``, the zip's manifest carries that version (the
    tree is not touched). Entries are sorted and dated 1980-01-01: the same tree gives the same
    bytes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / zip_name(root)
    folder = root / INTEGRATION
    entries: list[tuple[str, bytes]] = []
    for relative in integration_files(root):
        data = (folder / relative).read_bytes()
        if relative == Path("manifest.json") and version is not None:
            manifest = json.loads(data)
            manifest["version"] = version
            data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        entries.append((relative.as_posix(), data))
    entries.append(("LICENSE", (root / "LICENSE").read_bytes()))
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
    return target


def uncommitted(root: Path = ROOT) -> list[str]:
    """Files under the integration that git does not have as committed (empty without git)."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--", str(INTEGRATION)],
            cwd=root, capture_output=True, text=True, check=True,
        )  # fmt: skip
    except OSError, subprocess.CalledProcessError:
        return []
    return [line[3:] for line in result.stdout.splitlines() if line.strip()]


# -- the check --------------------------------------------------------------------------------


def check_zip(archive: Path, version: str, venvs: Iterable[str] = VENVS) -> None:
    """Install the zip into a fresh Home Assistant config and load it, with each test venv."""
    found = [v for v in venvs if (ROOT / v / "bin" / "python").exists()]
    if not found:
        raise ReleaseError("no test venv to check the zip with: run script/bootstrap first")
    env = {**os.environ, "RESS_RELEASE_ZIP": str(archive), "RESS_RELEASE_VERSION": version}
    env.pop("PYTHONPATH", None)
    for venv in found:
        print(f"release: checking {archive.name} in a fresh Home Assistant ({venv})", flush=True)
        command = [str(ROOT / venv / "bin" / "python"), "-m", "pytest", "-q", "-p",
                   "no:cacheprovider", CHECK_TEST]  # fmt: skip
        if subprocess.run(command, cwd=ROOT, env=env, check=False).returncode:
            raise ReleaseError(f"the zip does not install and load with {venv} (see above)")


# -- the command ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="script/release",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("version", help="the version to release, e.g. 0.2.0")
    parser.add_argument("--dry-run", action="store_true", help="build and check, change no file")
    parser.add_argument("--no-check", action="store_true", help="do not install-test the zip")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the zip goes")
    parser.add_argument(
        "--date", type=date.fromisoformat, default=date.today(), help="release date (today)"
    )
    return parser


def release(argv: Sequence[str] | None = None, root: Path = ROOT) -> Path:
    """Run ``script/release``; returns the zip."""
    args = _parser().parse_args(argv)
    version = args.version
    key = version_key(version)
    changelog_path = root / "CHANGELOG.md"
    changelog = changelog_path.read_text("utf-8")
    current = manifest_version(root)
    if pyproject_version(root) != current:
        raise ReleaseError(
            f"manifest.json says {current}, pyproject.toml {pyproject_version(root)}: fix first"
        )
    again = version in released_versions(changelog)
    if again and version != current:
        raise ReleaseError(f"CHANGELOG.md has {version} already, but the tree is at {current}")
    if not again:
        if key <= version_key(current):
            raise ReleaseError(f"{version} is not newer than the current {current}")
        release_changelog(changelog, version, args.date)  # refuse an empty "Unreleased" now
    archive = build_zip(args.out, version, root)
    print(f"release: built {archive} ({len(integration_files(root))} files + LICENSE)")
    if dirty := uncommitted(root):
        print(f"release: warning: not committed, but in the zip: {', '.join(dirty)}")
    if not args.no_check:
        check_zip(archive, version)
    if again:
        print(f"release: {version} is released already; manifest and changelog left as they are")
        text = changelog
    elif args.dry_run:
        print("release: dry run, no file changed")
        text = release_changelog(changelog, version, args.date)
    else:
        set_versions(version, root)
        text = release_changelog(changelog, version, args.date)
        changelog_path.write_text(text, "utf-8")
        print(f"release: manifest.json and pyproject.toml say {version}; CHANGELOG.md has it")
    notes = args.out / f"release-notes-{version}.md"
    notes.write_text(notes_of(text, version), "utf-8")
    print(
        "release: nothing was committed or tagged. To publish:\n"
        f"  git commit -m 'Release {version}' -- CHANGELOG.md pyproject.toml"
        f" {INTEGRATION}/manifest.json\n"
        f"  git tag v{version} && git push origin main v{version}\n"
        f"  gh release create v{version} {archive} --title {version} --notes-file {notes}"
    )
    return archive


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one line on stderr and exit status 1 for anything that stops the release."""
    try:
        release(argv)
    except (ReleaseError, OSError) as err:
        print(f"script/release: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
