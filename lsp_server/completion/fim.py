"""FIM templates now live with the model description, in :mod:`lsp_server.backends.templates`.

This module re-exports them so that ``completion`` code (and anyone importing the old
path) keeps working; new code imports from ``lsp_server.backends.templates``.
"""

from __future__ import annotations

from lsp_server.backends.templates import (
    ALL_SPECIAL_TEXTS,
    CODEGEMMA,
    CODELLAMA,
    DEEPSEEK,
    FIM_TEMPLATES,
    QWEN,
    SPM_SPACE,
    STARCODER,
    FimTemplate,
    detect_template,
    get_template,
    template_from_tokens,
)

__all__ = [
    "ALL_SPECIAL_TEXTS",
    "CODEGEMMA",
    "CODELLAMA",
    "DEEPSEEK",
    "FIM_TEMPLATES",
    "QWEN",
    "SPM_SPACE",
    "STARCODER",
    "FimTemplate",
    "detect_template",
    "get_template",
    "template_from_tokens",
]
