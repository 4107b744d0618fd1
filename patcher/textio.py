"""Read and write target files byte for byte: line endings and final newlines kept."""

from __future__ import annotations

from pathlib import Path

from patcher.errors import InputError


def read_text(path: Path, shown_as: str) -> str:
    """Read a UTF-8 file without translating line endings."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(shown_as, "file not found") from None
    except IsADirectoryError:
        raise InputError(shown_as, "is a folder, expected a file") from None

    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise InputError(
            shown_as, f"not valid UTF-8 (byte 0x{data[error.start]:02x}); convert the file to UTF-8", line, column
        ) from None


def line_ending(text: str) -> str:
    """Return the line ending the text uses most, LF when it has none."""
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    return "\r\n" if crlf > lf else "\n"


