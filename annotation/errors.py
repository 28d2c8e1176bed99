"""The one exception type for errors a user can cause and fix."""


class LineInspectError(Exception):
    """A problem the user can fix (bad export, missing file, bad config...).

    The CLI prints the message without a traceback and exits non-zero, so the
    message must say what is wrong and what to do about it.
    """
