"""Data security: keys (the key-management port and its adapters), envelope encryption of
personal data and card numbers under per-subject data keys, and (later) authentication and
roles."""
