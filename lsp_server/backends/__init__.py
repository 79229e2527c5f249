"""Model backends. Importing this package makes OpenMP threads sleep while they wait (see
:func:`lsp_server.backends.threads.quiet_openmp`): it runs before any backend imports
llama_cpp."""

from lsp_server.backends.threads import quiet_openmp

quiet_openmp()
