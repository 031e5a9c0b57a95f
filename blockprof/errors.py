"""The one exception type a user should ever see.

Anything the user can get wrong (a width, a block name, a file) raises
:class:`BlockprofError` with a one-line message that says what is wrong and what
would be right. The CLI turns it into that line on stderr and exit code 2; every
other exception is a bug in blockprof.
"""


class BlockprofError(ValueError):
    """Bad input, described in one line that names the fix."""
