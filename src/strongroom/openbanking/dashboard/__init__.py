"""The customer's open banking consent dashboard: which TPP has which access until when, and
revoking it in one click (an API under /v1 and a page served by the app; docs/openbanking.md)."""
