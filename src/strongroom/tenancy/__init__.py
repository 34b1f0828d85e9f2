"""Tenants, API keys with scopes, and the idempotency records of the HTTP API."""
