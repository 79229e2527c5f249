"""Reading files that may not be what they were a moment ago.

Used for every file read the server does on its own (workspace files, ``.gitignore``,
the user's ``models.toml``): never blocks on a FIFO or device, never follows a link put
in a file's place, never reads more than asked.
"""

from __future__ import annotations

import os
import stat

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def read_regular_file(
    path: str | os.PathLike[str], limit: int, follow: bool = False
) -> bytes | None:
    """At most ``limit + 1`` bytes of ``path`` if it is, right now, a regular file.

    Files change between the walk and a later read: the last path component is not
    followed (``O_NOFOLLOW``: a file replaced by a link to somewhere else reads nothing),
    a FIFO or device never blocks the open (``O_NONBLOCK``) and is refused by ``fstat``.
    None for anything else, or when the file cannot be read. ``follow`` allows a link as
    the last component (a user's config file may be one; the target is still checked).
    """
    flags = _OPEN_FLAGS & ~getattr(os, "O_NOFOLLOW", 0) if follow else _OPEN_FLAGS
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)
