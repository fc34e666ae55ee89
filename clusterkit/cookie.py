"""The magic cookie, read from and created in ~/.erlang.cookie the way Erlang does it."""
from __future__ import annotations

import os
import secrets
import stat
import string
from pathlib import Path


class CookieError(RuntimeError):
    pass


def cookie_path() -> Path:
    return Path(os.path.expanduser("~")) / ".erlang.cookie"


def read_or_create(path: Path | None = None) -> str:
    """Erlang's auth module: use the file, or create it with 20 random capitals, mode 0400."""
    path = path or cookie_path()
    if not path.exists():
        cookie = "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))
        # O_EXCL: if another node creates the file at the same moment, use theirs.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        except FileExistsError:
            return read_or_create(path)
        with os.fdopen(fd, "w") as f:
            f.write(cookie)
        return cookie
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CookieError(
            f"Cookie file {path} must be accessible by owner only "
            f"(its mode is {mode:o}). Fix it with: chmod 400 {path}")
    text = path.read_text(encoding="latin-1")
    cookie = text.strip().split("\n")[0].strip() if text.strip() else ""
    if not cookie:
        raise CookieError(f"Cookie file {path} is empty. Delete it and clusterkit "
                          "(or erl) will create a new one.")
    return cookie
