"""The audit benchmark as a script: `python bench/audit.py [--json] [--quick | --smoke]`.

The same as `strongroom bench audit`; the implementation lives in
src/strongroom/benchmarks/audit.py so that the installed command has it too.
"""

from __future__ import annotations

import sys

from strongroom.cli import app

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "bench", "audit", *sys.argv[1:]]
    app()
