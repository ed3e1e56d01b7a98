"""User-facing errors: the CLI prints these as one line on stderr and exits non-zero."""


class HarkError(Exception):
    """An error caused by input, environment or configuration, never by a bug in hark."""

    exit_code = 2
