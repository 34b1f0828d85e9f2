"""The UK Open Banking v4.0 resources of each tenant: consents (storage, lifecycle, expiry),
account information and funds confirmation (docs/openbanking.md)."""
