"""coder-lsp: a local-first AI code-completion language server."""

__version__ = "0.1.0"
