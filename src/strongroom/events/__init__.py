"""Events: a transactional outbox written with every ledger change, and its delivery to
webhook endpoints (Standard Webhooks), at least once.

- outbox.py: the ledger's event sink; writes `events` rows inside the ledger's transaction.
- dispatcher.py: routes committed events to endpoints and delivers them, with retries.
- signing.py: Standard Webhooks signatures and their verification.
- ssrf.py: refuses targets inside the network.
- service.py: endpoints, events and attempts for the API; store.py: all of the SQL.
"""
