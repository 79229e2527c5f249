"""One error hierarchy for coder-lsp.

Every error the product raises on purpose derives from :class:`CoderLspError` and carries
a message written for the user. The protocol layer maps them to LSP responses and
``window/showMessage`` in exactly one place (``server.py``); the CLI prints them.
"""

from __future__ import annotations


class CoderLspError(Exception):
    """Base class: ``str(err)`` is a message fit to show the user."""


class SettingsError(CoderLspError):
    """A setting has an invalid value (defaults are used instead)."""


class UnknownModelError(CoderLspError):
    """A model name is neither in the registry nor a path to a file."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"unknown model {name!r}; known models: {', '.join(known)} "
            "(or give a path to a .gguf file)"
        )


class ModelNotDownloadedError(CoderLspError):
    """A registry model is known but its file is not in the local cache."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"model {name!r} is not downloaded yet; run: coder-lsp models pull {name}")


class ModelLoadError(CoderLspError):
    """A model file is missing, truncated, not GGUF, or llama.cpp refused it."""


class DownloadError(CoderLspError):
    """A model download failed from every source."""


class BackendError(CoderLspError):
    """The generation backend failed while generating."""


class EngineError(BackendError):
    """A remote inference engine failed: unreachable, refused the key, overloaded, still
    loading, timed out or dropped the connection. ``str(err)`` says which, never the key.

    The engine answers empty meanwhile and reconnects with backoff.
    """


class EngineAuthError(EngineError):
    """The engine refused the API key (HTTP 401/403)."""


class EngineLoadingError(EngineError):
    """The engine is up but still loading its model (HTTP 503)."""


class ContextExceededError(EngineError):
    """The engine says the prompt does not fit its context (``n_ctx`` when it said so)."""

    def __init__(self, message: str, n_ctx: int | None = None) -> None:
        self.n_ctx = n_ctx
        super().__init__(message)
