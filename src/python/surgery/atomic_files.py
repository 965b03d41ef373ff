"""Files that appear whole or not at all: written beside their target under
a hidden temporary name (``.<name>.*``), then renamed into place, so a crash
leaves the old file or none, never part of one. What is put in place gets
the permissions a plain ``open()`` would have given it (0666, or 0777 for a
folder, less the umask), not the temporary's private 0600."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import IO, Iterator


def _umask() -> int:
    # Linux states it in /proc; os.umask can only read it by setting it,
    # which would race with threads creating files.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(tmp: str, path: str) -> None:
    """Renames the finished temporary `tmp` (a file) to `path`, with the
    permissions of a newly created file."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def publish_folder(new: str, path: str) -> None:
    """Moves finished folder `new` to `path` (mode of a new folder); a folder
    already there goes only once the new one is in place (a folder cannot be
    renamed over a full one, so the old one steps aside first: `path` is then
    briefly absent, never partial)."""
    os.chmod(new, 0o777 & ~_umask())
    if os.path.lexists(path):
        old = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(path)),
                               prefix=f".{os.path.basename(path)}.old.")
        os.replace(path, os.path.join(old, "item"))
        os.replace(new, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, path)


@contextlib.contextmanager
def replacing(path: str, binary: bool = False) -> Iterator[IO]:
    """A file object to write `path`'s new content to; put in place when
    the block ends, removed if it raises."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "wb" if binary else "w",
                       **({} if binary else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str, text: str) -> None:
    """`path` holds `text`, whole."""
    with replacing(path) as f:
        f.write(text)


def write_bytes(path: str, data: bytes) -> None:
    """`path` holds `data`, whole."""
    with replacing(path, binary=True) as f:
        f.write(data)


def remove_leftovers(path: str) -> None:
    """Removes what a killed writer of `path` left: its ``.<name>.*`` temporaries."""
    folder, name = os.path.split(os.path.abspath(path))
    for entry in os.listdir(folder):
        if entry.startswith(f".{name}."):
            full = os.path.join(folder, entry)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.unlink(full)
