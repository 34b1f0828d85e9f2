"""People: who signs in and how. Passwords (Argon2id), TOTP (RFC 6238), WebAuthn passkeys,
sessions with step-up, and the users who hold them (docs/authentication.md)."""
