"""Customers (the people and businesses who own accounts) and counterparties (payees who are
not customers), their personal data sealed under each subject's own data key."""
