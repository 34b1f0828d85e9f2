"""The verifiable audit log: RFC 9162 Merkle trees, tiles, C2SP signed notes and checkpoints.

The modules here are pure (no database, no I/O beyond reading a tlog-tiles directory on request);
stores, HTTP and CLI build on them.
"""
