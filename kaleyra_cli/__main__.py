"""``python -m kaleyra_cli`` and the ``kwa`` console script."""

from __future__ import annotations

import os
import sys


def main() -> int:
    # `kwa --version` alone (scripts and CI steps check the install with it) answers before
    # Typer is imported: the same line Typer's --version prints, in about a fifth of the time.
    if sys.argv[1:] in (["--version"], ["-V"]) and "_KWA_COMPLETE" not in os.environ:
        from ._version import __version__

        try:
            sys.stdout.write(f"kwa {__version__}\n")
            sys.stdout.flush()
        except BrokenPipeError:  # `kwa --version | head -0`: the reader went away, nothing to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    from .cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
