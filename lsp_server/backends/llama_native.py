"""llama.cpp's own log, routed to Python logging instead of stderr or stdout.

stdout is the LSP transport, so nothing native may write there. llama.cpp's log goes to
the ``lsp_server.backends.llama_cpp.native`` logger through a callback, and file
descriptors are never redirected (llama-cpp-python's ``verbose=False`` would point fd 1
at /dev/null during a load, eating messages other threads write meanwhile). The last
error lines are kept so that a refused load can say why (llama.cpp only logs it).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import threading
from collections import deque
from collections.abc import Iterator

import llama_cpp

from lsp_server.errors import ModelLoadError

logger = logging.getLogger("lsp_server.backends.llama_cpp")
native_logger = logging.getLogger("lsp_server.backends.llama_cpp.native")
"""llama.cpp's own log lines, routed here instead of to stderr."""

# ggml's log levels (ggml.h; llama-cpp-python's own mapping predates their renumbering).
_LOG_LEVELS = {
    0: logging.DEBUG,  # NONE: raw output
    1: logging.DEBUG,
    2: logging.INFO,
    3: logging.WARNING,
    4: logging.ERROR,
}
_GGML_LOG_CONT = 5
_recent_errors: deque[str] = deque(maxlen=20)
_last_level = logging.DEBUG
_log_lock = threading.Lock()
_log_installed = False


@llama_cpp.llama_log_callback
def _on_native_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    """Route one llama.cpp log line to :data:`native_logger` (never to stdout)."""
    global _last_level
    py_level = _last_level if level == _GGML_LOG_CONT else _LOG_LEVELS.get(level, logging.DEBUG)
    _last_level = py_level
    line = text.decode("utf-8", errors="replace").rstrip("\n")
    if not line:
        return
    if py_level >= logging.ERROR:
        # Kept so a refused load can say why: llama.cpp only reports it in the log.
        _recent_errors.append(line.strip())
    # llama.cpp writes hundreds of info lines per load: keep them at DEBUG.
    native_logger.log(logging.DEBUG if py_level <= logging.INFO else py_level, line)


def install_native_logging() -> None:
    """Point llama.cpp's log at :func:`_on_native_log` (once per process)."""
    global _log_installed
    with _log_lock:
        if not _log_installed:
            llama_cpp.llama_log_set(_on_native_log, ctypes.c_void_p(0))
            _log_installed = True


@contextlib.contextmanager
def native_load(failure: str) -> Iterator[None]:
    """Run a llama.cpp load with its log routed and llama-cpp-python's prints caught.

    A load that llama.cpp refuses raises :class:`ModelLoadError` as ``"{failure}: why"``,
    where why is the error lines llama.cpp logged (else the exception's text).
    """
    install_native_logging()
    _recent_errors.clear()
    chatter = io.StringIO()
    try:
        # verbose=False would point file descriptors 1 and 2 at /dev/null for the whole
        # load, swallowing any LSP message another thread writes meanwhile. Instead
        # llama.cpp's log goes through our callback, and llama-cpp-python's own
        # load-time prints (all to sys.stderr) are caught at the Python level.
        with contextlib.redirect_stderr(chatter):
            yield
    except (ValueError, RuntimeError, OSError) as err:
        why = "; ".join(_recent_errors) or str(err)
        raise ModelLoadError(f"{failure}: {why}") from err
    finally:
        if chatter.getvalue():
            logger.debug("llama-cpp-python: %s", chatter.getvalue().strip())
