"""One exception type for problems the user can fix.

Everything mgc raises on purpose is an :class:`MgcError` whose message is a
single line naming the file or config key and what to do. The entry points
catch it and print just that line, so a bad input never ends in a traceback
from deep inside a library.
"""


class MgcError(Exception):
    """A user-facing error: bad data, a bad config value or a bad file."""
