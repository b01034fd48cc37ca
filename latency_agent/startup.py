"""What the agent needs before it listens: a runtime it can time with, and its access token.

The token is made once, on the first start, into a file only its owner can read (created
with O_EXCL and mode 0600, in a 0700 folder), and reused after; a token file that others can
read, or that is not a plain file of this user, is refused rather than trusted. Standard
library only, so a missing numpy or onnxruntime is reported in one line.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import secrets
import stat
from pathlib import Path

__all__ = ["RUNTIMES", "AgentSetupError", "check_runtime", "default_token_path", "load_or_create_token"]

RUNTIMES = ("onnxruntime", "coreml")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_MIN_TOKEN = 16


class AgentSetupError(ValueError):
    """A setting the agent cannot start with; its message is one line naming the problem and the fix."""


def check_runtime(runtime: str) -> None:
    """Refuse a runtime this machine cannot time with (Core ML: not in this version of the agent)."""
    if runtime == "coreml":
        if platform.system() != "Darwin":
            raise AgentSetupError(f"--runtime coreml needs macOS (this is {platform.system()}); "
                                  "use --runtime onnxruntime")
        if importlib.util.find_spec("coremltools") is None:
            raise AgentSetupError("--runtime coreml needs coremltools (pip install coremltools)")
        raise AgentSetupError("--runtime coreml is not supported yet; use --runtime onnxruntime")
    if runtime != "onnxruntime":
        raise AgentSetupError(f"--runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    for module in ("numpy", "onnxruntime", "onnx"):
        if importlib.util.find_spec(module) is None:
            raise AgentSetupError(f"the agent needs {module}: pip install numpy onnxruntime onnx")


def default_token_path() -> Path:
    """`$NAS_HOME/agent/token` (NAS_HOME defaults to ~/.cache/vit-nas)."""
    return _nas_home() / "agent" / "token"


def _nas_home() -> Path:
    home = os.environ.get("NAS_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "vit-nas"


def _refuse(path: Path, problem: str, fix: str) -> AgentSetupError:
    return AgentSetupError(f"token file {path}: {problem}; {fix}")


def _read(path: Path) -> str:
    """The token in `path`; FileNotFoundError if there is none yet."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:  # a symbolic link (O_NOFOLLOW), a folder, not allowed
        raise _refuse(path, exc.strerror or "cannot be opened",
                      "give --token-file a plain file of yours") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(path, "not a regular file", "give --token-file a plain file of yours")
        if os.name == "posix" and info.st_mode & 0o077:
            raise _refuse(path, f"others can read or write it (mode {stat.S_IMODE(info.st_mode):o})",
                          f"chmod 600 {path}, or remove it to make a new token")
        if os.name == "posix" and info.st_uid != os.geteuid():
            raise _refuse(path, "it belongs to another user", "remove it to make a new token")
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    token = data.decode("ascii", "replace").strip()
    if len(token) < _MIN_TOKEN or any(not c.isprintable() or c.isspace() for c in token):
        raise _refuse(path, f"no token in it (one line of at least {_MIN_TOKEN} printable ASCII characters)",
                      "remove it to make a new token")
    return token


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """The token in `path` and whether it was made just now (a new 0600 file, its folder 0700).

    Raises:
        AgentSetupError: the file cannot be made, or is not a private token file.
    """
    path = Path(path)
    try:
        return _read(path), False
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except FileExistsError:
        return _read(path), False  # another agent made it meanwhile
    except OSError as exc:
        raise _refuse(path, f"cannot be made ({exc.strerror})", "give --token-file a writable path") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return token, True
