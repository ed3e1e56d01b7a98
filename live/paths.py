"""Probing a path the user gave, with one clear line instead of a traceback.

pathlib's exists() / is_file() / is_dir() answer False for a missing path but raise
PermissionError when a folder on the way cannot be searched (Python 3.11), which would reach the
user as a traceback. path_kind() stats once and turns every such failure into a HarkError.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Literal

from hark.live.errors import HarkError

PathKind = Literal["file", "dir", "other"]
_ABSENT = (errno.ENOENT, errno.ENOTDIR)  # nothing there (a file on the way is not a folder)


def path_kind(path: str | os.PathLike[str], error: type[HarkError] = HarkError) -> PathKind | None:
    """What is at `path` ("file", "dir", "other"), or None when nothing is there.

    A path that cannot be reached (a folder on the way not searchable, a symlink loop, a name
    too long) raises `error` naming the path and the reason.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno in _ABSENT:
            return None
        raise error(f"cannot reach {Path(path)}: {e.strerror or e}") from None
    except ValueError as e:  # an embedded NUL byte
        raise error(f"{Path(path)!s:.200}: not a usable path ({e})") from None
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "dir" if stat.S_ISDIR(st.st_mode) else "other"
