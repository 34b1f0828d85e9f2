"""Open banking: a FAPI 2.0 style authorization server for third-party providers and the UK
Open Banking v4.0 account-information and payment-initiation APIs (docs/openbanking.md).

The cryptographic foundation is pure (no database, no HTTP): JWK handling (`jose`), PKCE
(`pkce`), DPoP proofs (`dpop`), private_key_jwt client assertions (`clientauth`) and the
detached JWS of `x-jws-signature` (`jws_detached`); their refusals are in `errors`. So is the
Open Banking vocabulary: amounts, currencies, schemes and permissions (`model`), the consent
lifecycle (`consents`) and OB error bodies (`obcodes`; docs/openbanking-model.md).

`resources` serves each tenant's consents, account information and funds confirmation over the
UK OB v4.0 paths: a separate API beside /v1, authenticated by DPoP-bound tokens.
"""
