"""The HTTP benchmark as a script: `python bench/http.py [--json] [--quick | --smoke]`.

The same as `strongroom bench http`; the implementation lives in src/strongroom/benchmarks/http.py
(the load generator in src/strongroom/benchmarks/loadgen.py) so that the installed command has it
too.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this file is named like the
# standard library's `http` package: drop the folder before anything imports `http`.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from strongroom.cli import app  # noqa: E402 - only once sys.path no longer shadows `http`

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "bench", "http", *sys.argv[1:]]
    app()
