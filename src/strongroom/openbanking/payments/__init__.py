"""UK Open Banking v4.0 domestic payments (PISP): domestic payment consents, their funds
confirmation, domestic payments and their details, under each tenant's RESOURCE_BASE
(docs/openbanking.md, "Payments").

A payment is a ledger transfer like any other: it passes the transfer pipeline (the gates,
among them this package's consent gate; the limits; no-overdraft), from the account the customer
chose at authorisation to the tenant's outbound clearing account of its currency; its consent is
consumed in the posting transaction (this package's sink). Every answer is signed
(`x-jws-signature`) by the deployment's key, published at /oauth2/jwks.
"""
