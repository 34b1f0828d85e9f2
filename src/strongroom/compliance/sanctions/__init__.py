"""Sanctions and PEP screening: list parsers (lists.py), name normalisation (normalize.py),
matching and scoring (match.py) and the candidate index (index.py), all pure; versioned list
snapshots, screenings and dismissals in the database (store.py, service.py), the ad-hoc search
(api.py) and the payee gate of the transfer pipeline (gate.py)."""
