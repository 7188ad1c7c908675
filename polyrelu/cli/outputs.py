"""Nothing computed is lost: output paths are checked before the work starts, and a
result whose file cannot be written after all is saved in the current directory.

``check_output`` runs before the work (the folder exists and is writable, the path is
not a folder); ``write_output`` writes after it and, on an ``OSError``, writes the same
content to ``polyrelu-rescued-<time>-<name>`` in the current directory instead, recording
both in the results (the command then prints them and exits with status 2).
"""

import os
import time
from pathlib import Path

from ..analysis.table import check_table_path, write_table
from ..errors import InvalidFileError

__all__ = [
    "WRITE_ERROR",
    "add_table_option",
    "check_checkpoint",
    "check_output",
    "check_table",
    "write_output",
    "write_table_output",
]

WRITE_ERROR = "write_error"


def check_output(path, option):
    """Refuse an output path that cannot be written: a folder, in a missing or read-only
    folder, or an existing read-only file.

    Parameters
    ----------
    path : str, Path or None
        None (the option was not given) passes.
    option : str
        The option's name, for the message.

    Raises
    ------
    InvalidFileError
    """
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise InvalidFileError(f"{option} {path}: is a directory, expected a file name")
    _writable_folder(path, option)
    if path.exists() and not os.access(path, os.W_OK):
        raise InvalidFileError(f"{option} {path}: the file exists and is not writable")


def check_checkpoint(path, option="--checkpoint"):
    """Refuse a checkpoint path that names an existing file or lies in a missing or
    read-only folder (an existing checkpoint folder is fine: the run resumes)."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidFileError(f"{option} {path}: an existing file, expected a directory "
                               "(new, or a checkpoint to resume)")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise InvalidFileError(f"{option} {path}: the directory is not writable")
        return
    _writable_folder(path, option)


def _writable_folder(path, option):
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidFileError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidFileError(f"{option} {path}: the folder {folder} is not writable")


def write_output(results, key, path, write):
    """``write(path)``; on ``OSError``, ``write`` to a rescue file in the current directory.

    Parameters
    ----------
    results : dict
        The command's results: ``results[key]`` is set to the path written; on a failed
        write ``results["write_error"]`` names the failure and the rescue file (the
        command line prints the results, then that line, and exits with status 2).
    key : str
    path : str or Path
    write : callable
        ``write(path)`` writes the file.
    """
    try:
        write(path)
        results[key] = str(path)
        return
    except OSError as err:
        reason = err.strerror or str(err)
    rescue = Path.cwd() / f"polyrelu-rescued-{time.strftime('%Y%m%d-%H%M%S')}-{Path(path).name}"
    try:
        write(rescue)
    except OSError as err:
        results[WRITE_ERROR] = (f"cannot write {path} ({reason}) nor the rescue file {rescue} "
                                f"({err.strerror or err}): the results above are all there is")
        return
    results[key] = str(rescue)
    results[WRITE_ERROR] = f"cannot write {path} ({reason}); saved to {rescue} instead"


def add_table_option(parser, what):
    """``--table FILE``: one row per region (``what``) written as .csv or .parquet."""
    parser.add_argument("--table", metavar="FILE",
                        help=f"write a table of the {what} (id, pattern, interior point, "
                             "outputs, gradient norm, class, facets, neighbours, ...) to "
                             "FILE (.csv or .parquet)")


def check_table(path):
    """Before any work: a ``--table`` path that can be written (None passes)."""
    if path is not None:
        check_table_path(path)
        check_output(path, "--table")


def write_table_output(results, path, make_table):
    """Write ``make_table()`` to ``path`` (if given), rescued like every output."""
    if path is not None:
        table = make_table()
        write_output(results, "table_file", path, lambda target: write_table(table, target))
