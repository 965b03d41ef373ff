"""Every file the package reads or writes for the user, under one set of
rules (those of the core's Net.save and file readers,
src/cpp/surgery/files/atomic_file.cpp and input_file.cpp).

Writing: a file appears whole or not at all: it is written beside its
target under a hidden temporary name (``.<name>.*``), then renamed into
place, so a crash leaves the old file or none, never part of one. Only a
regular file (or a name not yet taken) is replaced: a FIFO, device, socket
or folder is refused, as is a read-only file; a symbolic link is written
through (the file it names is replaced and the link stays), a dangling one
refused. A replaced file keeps its mode (and, where allowed, its owner); a
new one gets what a plain ``open()`` would give it (0666, or 0777 for a
folder, less the umask), not the temporary's private 0600. ``Outputs``
refuses, before anything is computed, an output that is one of the run's
inputs or another of its outputs.

Reading: only a regular file is opened (a FIFO would block, a device such as
/dev/zero never end); its size is bounded before a byte is read, and a read
never takes more than that bound even if the file grows. A ``.npy`` file's
header is decoded and checked (numbers only, as many bytes as the shape
needs, within the memory limit) before its array is allocated.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import stat
import tempfile
import warnings
from typing import IO, Any, BinaryIO, Dict, Hashable, Iterable, Iterator, List, Tuple

from .errors import FileError
from .memory_budget import check_memory

# Bounds on files that hold text, whatever the memory limit: a labels file
# of a million classes is a few MiB; a map's geometry or a record, KiB.
LABELS_BYTES = 16 * 2**20
RECORD_BYTES = 2**20
# numpy's own bound on a .npy header (numpy.lib.format's max_header_size).
NPY_HEADER_BYTES = 10000


def kind_of(mode: int) -> str:
    """What a file of st_mode `mode` is, as a message says it."""
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return kind
    return "a special file"


def checked_name(path, what: str) -> str:
    """`path` (str, bytes or os.PathLike, as open() takes) as a str, refusing
    a name no file can have."""
    try:
        name = os.fsdecode(path)
    except TypeError:
        raise FileError(f"{what}: {path!r} is not a file name") from None
    if not name:
        raise FileError(f"{what}: empty file name")
    if "\0" in name:
        raise FileError(f"{what} {name.split(chr(0))[0]!r}\\0...: the name holds a NUL byte, "
                        "which no file can have")
    return name


# ---- writing ----------------------------------------------------------------

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


def check_replaceable(shown: str, path: str, st: os.stat_result, what: str) -> None:
    """Only a regular, writable file may be replaced: renaming over a FIFO or
    device would turn it into a plain file (as root, /dev/null for everyone),
    over a folder it fails half-way. `shown` names `path` in messages."""
    if not stat.S_ISREG(st.st_mode):
        raise FileError(f"{what} {shown} is {kind_of(st.st_mode)}, not a regular file: "
                        "refusing to replace it; write to a file name instead")
    # Root may write anything, so the mode bits are checked too.
    if (st.st_mode & 0o222) == 0 or not os.access(path, os.W_OK):
        raise FileError(f"{what} {shown} is read-only: refusing to replace it (as cp does); "
                        "make it writable (chmod u+w) or write under another name")


def _through_link(name: str, what: str) -> Tuple[str, str]:
    """(the file that `name` names, how a message shows it): a symbolic
    link gives its target (a dangling one is refused)."""
    if not os.path.islink(name):
        return name, repr(name)
    real = os.path.realpath(name)
    if not os.path.exists(real):
        raise FileError(f"{what} {name!r} is a symbolic link to a missing file "
                        f"({os.readlink(name)!r}): refusing to write through it; remove the "
                        "link or write elsewhere")
    return real, f"{name!r} (a link to {real!r})"


def output_target(path, what: str = "output") -> str:
    """The file that writing `path` replaces: `path` itself, or the file a
    symbolic link names; refused unless that is a regular writable file or a
    free name in an existing folder."""
    name, shown = _through_link(checked_name(path, what), what)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        folder = os.path.dirname(os.path.abspath(name))
        if not os.path.isdir(folder):
            raise FileError(f"{what} {shown}: folder {folder!r} does not exist") from None
        return name
    except OSError as error:  # a file used as a folder, a name too long, no access
        raise FileError(f"{what} {shown}: {error.strerror}") from None
    check_replaceable(shown, name, st, what)
    return name


def folder_target(path, what: str = "output") -> str:
    """As ``output_target``, for an output that is a folder (a Zarr map): an
    existing target must be a folder."""
    name, shown = _through_link(checked_name(path, what).rstrip("/") or "/", what)
    if os.path.lexists(name) and not os.path.isdir(name):
        raise FileError(f"{what} {shown} is {kind_of(os.stat(name).st_mode)}, not a folder: "
                        "refusing to replace it; write to a .zarr folder name instead")
    folder = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(folder):
        raise FileError(f"{what} {shown}: folder {folder!r} does not exist")
    return name


def identities(name: str) -> List[Hashable]:
    """The keys under which `name` is one file: its resolved path, and where
    it exists its inode (a hard link, a bind mount)."""
    keys: List[Hashable] = [os.path.realpath(name)]
    with contextlib.suppress(OSError):
        st = os.stat(name)
        keys.append((st.st_dev, st.st_ino))
    return keys


class Outputs:
    """The files one run will write, each checked when claimed (before
    anything is computed) against the files the run reads and the outputs
    claimed before it; each file is looked up by its identities, so a run
    of many images costs one lookup per file, not one per pair."""

    def __init__(self, inputs: Iterable[Tuple[str, Any]] = ()) -> None:
        """`inputs`: (what, path) of every file the run reads; a None path
        (an option not given) is skipped."""
        # identity -> (is an input, what, name)
        self._files: Dict[Hashable, Tuple[bool, str, str]] = {}
        for what, path in inputs:
            if path is not None:
                self._add(os.fsdecode(path), what, True)

    def _add(self, name: str, what: str, is_input: bool) -> None:
        for key in identities(name):
            self._files.setdefault(key, (is_input, what, name))

    def claim(self, path, what: str) -> str:
        """`path`, checked as an output (``output_target``), and not one of
        the inputs nor an output claimed before."""
        name = checked_name(path, what)
        for key in identities(name):
            if key not in self._files:
                continue
            is_input, other_what, other = self._files[key]
            if is_input:
                raise FileError(f"{what} would write {name!r}, which is {other_what} "
                                f"{other!r}: refusing to overwrite an input; write to another "
                                "name")
            raise FileError(f"{what} would write {name!r}, which {other_what} writes too: two "
                            "outputs would overwrite each other; give them separate names")
        target = output_target(name, what)
        self._add(name, what, False)
        return target


def _existing_mode(target: str) -> Tuple[int, int, int]:
    """(mode, uid, gid) that the file put at `target` gets: those of the
    file it replaces, else a new file's (uid and gid -1: left as created)."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return 0o666 & ~_umask(), -1, -1
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def publish(tmp: str, target: str, what: str = "output") -> None:
    """Renames the finished temporary `tmp` (a file) onto `target` (as
    ``output_target`` gave it), with the mode (and owner, where allowed) of
    the file it replaces. The target is checked again: it may have become
    something else while the temporary was written."""
    target = output_target(target, what)
    mode, uid, gid = _existing_mode(target)
    os.chmod(tmp, mode)
    if (uid, gid) != (-1, -1) and (uid, gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):  # only root may give a file away
            os.chown(tmp, uid, gid)
    os.replace(tmp, target)


def publish_folder(new: str, path: str, what: str = "output") -> None:
    """Moves finished folder `new` to `path` (mode of a new folder); a folder
    already there goes only once the new one is in place (a folder cannot be
    renamed over a full one, so the old one steps aside first: `path` is then
    briefly absent, never partial)."""
    path = folder_target(path, what)
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
def replacing(path, binary: bool = False, what: str = "output") -> Iterator[IO]:
    """A file object to write `path`'s new content to; put in place when
    the block ends, removed if it raises."""
    target = output_target(path, what)
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.")
    try:
        with os.fdopen(fd, "wb" if binary else "w",
                       **({} if binary else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, target, what)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text: str, what: str = "output") -> None:
    """`path` holds `text`, whole."""
    with replacing(path, what=what) as f:
        f.write(text)


def write_bytes(path, data: bytes, what: str = "output") -> None:
    """`path` holds `data`, whole."""
    with replacing(path, binary=True, what=what) as f:
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


# ---- reading ----------------------------------------------------------------

def open_regular_file(path, what: str = "image") -> BinaryIO:
    """`path` opened for reading, refusing anything but a regular file before a
    byte is read (a FIFO would block, a device such as /dev/zero never end)."""
    name = checked_name(path, what)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as error:
        raise FileError(f"cannot read {what} {name!r}: {error.strerror}") from error
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileError(f"{what} {name!r} is {kind_of(mode)}, not a regular file: refused "
                            "before reading")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_at_most(file: BinaryIO, size: int, name: str, what: str) -> bytes:
    """The `size` bytes fstat found, refusing a file that grew past them
    meanwhile (one byte more is asked to tell)."""
    data = file.read(size + 1)
    if len(data) > size:
        raise FileError(f"{what} {name!r} grew while it was read: refused")
    return data


def read_bytes(path, what: str, bound: int) -> bytes:
    """The whole of regular file `path`, refused before reading if it holds
    more than `bound` bytes (or than the memory limit)."""
    name = checked_name(path, what)
    with open_regular_file(name, what) as file:
        size = os.fstat(file.fileno()).st_size
        if size > bound:
            raise FileError(f"{what} {name!r} holds {size:,} bytes, more than the {bound:,} "
                            f"a {what} file may have: is it the right file?")
        check_memory(size, f"{what} {name!r}")
        return _read_at_most(file, size, name, what)


def read_text(path, what: str, bound: int) -> str:
    """``read_bytes`` as UTF-8 text, newlines as ``open()`` reads them."""
    data = read_bytes(path, what, bound)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileError(f"cannot read {what} {os.fsdecode(path)!r}: not UTF-8 text "
                        f"({error.reason} at byte {error.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_json_object(path, what: str, bound: int = RECORD_BYTES) -> dict:
    """A JSON file that must hold an object (not a list, number or null),
    bounded in size and nesting."""
    text = read_text(path, what, bound)
    name = os.fsdecode(path)
    try:
        value = json.loads(text)
    except RecursionError:
        # json's parser counts its nesting against the recursion limit
        # (about 1000) and stops there, cleanly.
        raise FileError(f"cannot read {what} {name!r}: JSON nested too deep") from None
    except ValueError as error:
        raise FileError(f"cannot read {what} {name!r}: not JSON ({error})") from None
    if not isinstance(value, dict):
        raise FileError(f"{what} {name!r} holds a JSON {type(value).__name__}, not an object")
    return value


def npy_header(file: BinaryIO, name: str, what: str) -> Tuple[Tuple[int, ...], Any, bool, int]:
    """(shape, dtype, Fortran order, data bytes) of the .npy array in `file`,
    read from its header alone and checked: numbers only, and the data the
    shape needs present in the file. `file` is left at the first data byte."""
    import numpy as np
    from numpy.lib import format as npy

    def refuse(why: str) -> FileError:
        return FileError(f"{what} {name!r} {why}")

    try:
        version = npy.read_magic(file)
    except ValueError as error:
        raise refuse(f"is not a .npy file ({error})") from None
    if version not in ((1, 0), (2, 0)):
        raise refuse(f"is a .npy file of version {version}, which is not read here (1.0 and "
                     "2.0 are)")
    # numpy reads the whole header before it checks its length (up to 4 GiB
    # in version 2.0): the length is checked here first.
    at = file.tell()
    length = int.from_bytes(file.read(2 if version == (1, 0) else 4), "little")
    if length > NPY_HEADER_BYTES:
        raise refuse(f"has a header of {length:,} bytes, more than a .npy header's "
                     f"{NPY_HEADER_BYTES:,}: a forged file")
    file.seek(at)
    read_header = npy.read_array_header_1_0 if version == (1, 0) else \
        npy.read_array_header_2_0
    try:
        with warnings.catch_warnings():
            # A header written by Python 2 is still a header.
            warnings.simplefilter("ignore", UserWarning)
            shape, fortran, dtype = read_header(file, max_header_size=NPY_HEADER_BYTES)
    except Exception as error:  # noqa: BLE001
        # numpy parses the (bounded) header with ast and tokenize, and refuses
        # a bad one with ValueError, TypeError, SyntaxError or TokenError.
        raise refuse(f"has a damaged .npy header ({error})") from None
    # Complex numbers are numbers, but no pixel or mean: numpy would drop
    # their imaginary part with only a warning.
    if dtype.hasobject or not np.issubdtype(dtype, np.number) \
            or np.issubdtype(dtype, np.complexfloating):
        raise refuse(f"holds {dtype}, not real numbers: refused before reading it")
    if any(d < 0 for d in shape):
        raise refuse(f"declares the impossible shape {shape}")
    need = dtype.itemsize * math.prod(shape)  # Python ints: no overflow
    data = os.fstat(file.fileno()).st_size - file.tell()
    if need > data:
        raise refuse(f"declares shape {shape} of {dtype} ({need:,} bytes) but holds "
                     f"{data:,} bytes of data: a truncated or forged file")
    return shape, dtype, fortran, need


def read_npy(path, what: str):
    """The array of .npy file `path`, allocated only once its header has been
    checked (``npy_header``) and found within the memory limit."""
    import numpy as np
    name = checked_name(path, what)
    with open_regular_file(name, what) as file:
        shape, dtype, fortran, need = npy_header(file, name, what)
        check_memory(need, f"{what} {name!r} (shape {shape} of {dtype})")
        array = np.empty(shape, dtype, order="F" if fortran else "C")
        # Bytes in the array's memory order, which is the file's.
        view = memoryview(array.reshape(-1, order="A").view(np.uint8))
        while view:
            got = file.readinto(view)
            if not got:
                raise FileError(f"{what} {name!r} ended while it was read: refused")
            view = view[got:]
    return array


def map_npy(path, what: str):
    """The array of .npy file `path` as a read-only memory map, once its
    header has been checked (``npy_header``)."""
    import numpy as np
    name = checked_name(path, what)
    with open_regular_file(name, what) as file:
        shape, dtype, fortran, _ = npy_header(file, name, what)
        if 0 in shape:  # mmap cannot map nothing
            return np.empty(shape, dtype)
        return np.memmap(file, dtype, mode="r", offset=file.tell(), shape=shape,
                         order="F" if fortran else "C")
