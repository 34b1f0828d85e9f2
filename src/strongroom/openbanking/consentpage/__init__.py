"""The consent page: the authorization endpoint (GET /oauth2/authorize) where a customer signs
in, steps up and approves or rejects a TPP's consent (docs/openbanking.md "The consent page")."""
