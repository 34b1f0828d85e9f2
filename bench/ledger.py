"""The ledger benchmark as a script:
`python bench/ledger.py [--json] [--quick | --smoke] [--no-postgres]`.

The same as `strongroom bench ledger`; the implementation lives in
src/strongroom/benchmarks/ledger.py so that the installed command has it too.
"""

from __future__ import annotations

import sys

from strongroom.cli import app

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "bench", "ledger", *sys.argv[1:]]
    app()
