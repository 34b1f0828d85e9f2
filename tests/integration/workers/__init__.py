"""Worker processes for the integration tests, run as `python -m tests.integration.workers.X`
from the repository root. Each builds its own engine and LedgerService, as a real client would."""
