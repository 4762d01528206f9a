"""``python -m kiln ARGS``: runs the kiln binary of this package with ARGS, in the environment the package gives it."""

from __future__ import annotations

import os
import sys

from ._binary import binary, environment
from .errors import KilnError


def main() -> None:
    try:
        exe = str(binary())
    except KilnError as e:
        print(f"kiln: error: {e.message}", file=sys.stderr)
        sys.exit(3)
    os.execve(exe, [exe, *sys.argv[1:]], environment())


if __name__ == "__main__":
    main()
