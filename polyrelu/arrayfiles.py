"""Reading ``.npz`` and ``.npy`` files polyrelu did not necessarily write: no pickles, and
every array's dtype and shape read from its header and checked against a size limit
before anything is allocated. Every failure is an :class:`InvalidFileError` (or a
:class:`SizeLimitError`) naming the file.

>>> import os, tempfile
>>> import numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
>>> np.savez(path, A=np.eye(2), b=np.ones(2))
>>> sorted(read_npz(path, "test", max_entries=10))
['A', 'b']
>>> try:
...     read_npz(path, "test", max_entries=3)
... except SizeLimitError as err:
...     print(str(err).split(": ", 1)[1])
the arrays hold more than max_parameters = 3 entries (counted from their headers); pass a \
larger max_parameters (--max-parameters) to load it
"""

import os
import tokenize
import zipfile
import zlib

import numpy as np

from .errors import InvalidFileError, PolyreluError, SizeLimitError, brief, clip

__all__ = ["npy_headers", "read_npz", "read_npy"]

#: What can go wrong reading a damaged zip archive or .npy member.
READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError,
               ValueError, KeyError, IndexError, TypeError, OverflowError, RuntimeError,
               NotImplementedError, MemoryError, SyntaxError, UnicodeDecodeError,
               tokenize.TokenError)

_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def npy_headers(archive, name, max_entries, text=()):
    """Shapes of the ``.npy`` members of an open zip archive, from their headers only.

    Parameters
    ----------
    archive : zipfile.ZipFile
    name : str or Path
        The file's name, for messages.
    max_entries : int
        Limit on the total number of entries of all members.
    text : collection of str
        Members that may hold unicode text (metadata) instead of numbers.

    Returns
    -------
    dict
        Member name without ``.npy`` to its shape (a tuple).

    Raises
    ------
    InvalidFileError
        If a member's dtype is not a plain number type (bool, integer or float; or
        text for the members named in ``text``), or its header declares more data than
        the member holds.
    SizeLimitError
        If the members hold more than ``max_entries`` entries in all.
    """
    shapes, total = {}, 0
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            continue
        key = info.filename[:-4]
        with archive.open(info) as member:
            shape, itemsize = _header(member, name, info.filename, text=key in text)
        entries = int(np.prod(shape, dtype=object))
        total += entries
        _check_total(total, max_entries, name)
        _check_held(entries * itemsize, info.file_size, name, info.filename)
        shapes[key] = tuple(shape)
    return shapes


def read_npz(path, what, *, max_entries, text=()):
    """All arrays of an ``.npz`` file by name, after :func:`npy_headers` checked them.

    ``what`` says what the file should be, for messages ("network", "region complex");
    ``text`` names the members that may hold unicode text.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            shapes = npy_headers(archive, path, max_entries, text)
    except PolyreluError:
        raise
    except READ_ERRORS as err:
        raise InvalidFileError(f"{path}: not a readable {what} file ({brief(err)})") from err
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in shapes}
    except READ_ERRORS as err:
        raise InvalidFileError(f"{path}: damaged array data ({brief(err)})") from err


def read_npy(path, what="array", *, max_entries):
    """The array of an ``.npy`` file, its header checked first (numbers, at most
    ``max_entries`` entries)."""
    try:
        with open(path, "rb") as handle:
            shape, itemsize = _header(handle, path, "")
            entries = int(np.prod(shape, dtype=object))
            _check_total(entries, max_entries, path)
            _check_held(entries * itemsize, os.fstat(handle.fileno()).st_size, path, "")
        return np.load(path, allow_pickle=False)
    except PolyreluError:
        raise
    except READ_ERRORS as err:
        raise InvalidFileError(f"{path}: not a readable {what} file ({brief(err)})") from err


def _where(member):
    return f"array {clip(member)!r}" if member else "the array"


def _header(stream, name, member, *, text=False):
    """The shape and item size in the ``.npy`` header at the start of ``stream``, its
    dtype checked (numbers, or unicode text with ``text``)."""
    where = _where(member)
    version = np.lib.format.read_magic(stream)
    if version not in _HEADER_READERS:
        raise InvalidFileError(f"{name}: {where} has .npy format version {version}, "
                               "expected 1.0 or 2.0")
    shape, _, dtype = _HEADER_READERS[version](stream)
    if dtype.kind not in ("biufU" if text else "biuf") or dtype.hasobject:
        raise InvalidFileError(f"{name}: {where} has dtype {dtype}, expected numbers")
    return shape, dtype.itemsize


def _check_held(declared, size, name, member):
    """Refuse an array whose header declares more bytes than its file or member holds."""
    if declared > size:
        raise InvalidFileError(f"{name}: {_where(member)} declares {declared} bytes of data "
                               f"but holds at most {size}")


def _check_total(total, limit, name):
    if total > limit:
        raise SizeLimitError(
            f"{name}: the arrays hold more than max_parameters = {limit} entries (counted "
            "from their headers); pass a larger max_parameters (--max-parameters) to load it")
