"""KYC: each customer's verification status and tier (model.py), the tier caps checked inside
the posting transaction as a limit of the transfer pipeline (limit.py), and its API (api.py).
docs/kyc.md describes the tiers, the windows and the codes."""
