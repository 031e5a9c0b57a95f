"""The one exception type a user should ever see.

Anything the user can get wrong (a width, a block name, a file) raises
:class:`BlockprofError` with a one-line message that says what is wrong and what
would be right. The CLI turns it into that line on stderr and exit code 2; every
other exception is a bug in blockprof.
"""


class BlockprofError(ValueError):
    """Bad input, described in one line that names the fix."""


def one_line(error: BaseException) -> str:
    """Any exception as one line: a BlockprofError's own message, else ``TypeName: first line``."""
    if isinstance(error, BlockprofError):
        return str(error)
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
