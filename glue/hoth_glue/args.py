"""Job arguments in Glue's `--key value` form."""

from __future__ import annotations

import sys


class ArgumentError(ValueError):
    """A required job argument is missing."""


def resolve(argv: list[str] | None, required: list[str]) -> dict[str, str]:
    """Reads `--name value` pairs like awsglue.utils.getResolvedOptions.

    On Glue the real function is used; elsewhere the same format is parsed.
    Unknown arguments (`--JOB_NAME`, `--TempDir`, ...) are tolerated.
    """
    argv = list(sys.argv if argv is None else argv)
    try:  # pragma: no cover - only on Glue
        from awsglue.utils import getResolvedOptions

        return getResolvedOptions(argv, required)
    except ImportError:
        pass
    found: dict[str, str] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value = argv[i + 1]
                i += 1
            found[name] = value
        i += 1
    missing = [r for r in required if not found.get(r)]
    if missing:
        raise ArgumentError(f"Missing job arguments: {', '.join('--' + m for m in missing)}")
    return found
