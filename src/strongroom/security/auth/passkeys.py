"""WebAuthn passkeys through py_webauthn: options to hand `navigator.credentials`, and the
verification of what the authenticator answers. User verification is required (a PIN or a
biometric on the device), and registration asks for a discoverable credential (a passkey), so
that a user may sign in without typing an email. Attestation is not asked for: the relying
party trusts the user's choice of authenticator, as passkey deployments do."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from strongroom.security.auth.errors import PasskeyRejected
from strongroom.security.auth.model import AuthConfig

TIMEOUT_MS = 60_000
_TRANSPORTS = {t.value: t for t in AuthenticatorTransport}


@dataclass(frozen=True, slots=True)
class NewPasskey:
    credential_id: str  # base64url
    public_key: bytes  # COSE
    sign_count: int
    transports: tuple[str, ...]


def _descriptors(ids: list[tuple[str, str]]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(cid),
            transports=[_TRANSPORTS[t] for t in transports.split() if t in _TRANSPORTS] or None,
        )
        for cid, transports in ids
    ]


def registration_options(
    config: AuthConfig, *, handle: bytes, name: str, existing: list[tuple[str, str]]
) -> tuple[dict[str, Any], bytes]:
    """(the options as JSON, the challenge to keep server-side)."""
    options = generate_registration_options(
        rp_id=config.rp_id,
        rp_name=config.rp_name,
        user_id=handle,
        user_name=name,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(existing),
    )
    return options_to_json_dict(options), options.challenge


def verify_registration(
    config: AuthConfig, credential: dict[str, Any], challenge: bytes
) -> NewPasskey:
    try:
        verified = verify_registration_response(
            credential=json.dumps(credential),
            expected_challenge=challenge,
            expected_rp_id=config.rp_id,
            expected_origin=list(config.origins),
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRejected(f"the passkey registration did not verify ({_why(exc)})") from None
    transports = credential.get("response", {}).get("transports") or []
    return NewPasskey(
        bytes_to_base64url(verified.credential_id),
        verified.credential_public_key,
        verified.sign_count,
        tuple(t for t in transports if isinstance(t, str) and t in _TRANSPORTS),
    )


def authentication_options(
    config: AuthConfig, allowed: list[tuple[str, str]]
) -> tuple[dict[str, Any], bytes]:
    """Options for a sign-in (`allowed` empty: any discoverable passkey of this RP) or a
    step-up (the user's own passkeys)."""
    options = generate_authentication_options(
        rp_id=config.rp_id,
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(allowed),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json_dict(options), options.challenge


def verify_authentication(
    config: AuthConfig,
    credential: dict[str, Any],
    challenge: bytes,
    public_key: bytes,
    sign_count: int,
) -> int:
    """The authenticator's new signature counter; PasskeyRejected when anything is off (the
    signature, the challenge, the origin, user verification, a counter that went backwards:
    a cloned authenticator)."""
    try:
        verified = verify_authentication_response(
            credential=json.dumps(credential),
            expected_challenge=challenge,
            expected_rp_id=config.rp_id,
            expected_origin=list(config.origins),
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRejected(f"the passkey assertion did not verify ({_why(exc)})") from None
    return int(verified.new_sign_count)


def credential_id_of(credential: dict[str, Any]) -> str:
    value = credential.get("id") if isinstance(credential, dict) else None
    if not isinstance(value, str) or not 1 <= len(value) <= 1400:
        raise PasskeyRejected("the credential has no id")
    return value


def user_handle_of(credential: dict[str, Any]) -> str | None:
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    return handle if isinstance(handle, str) and handle else None


def handle_text(handle: bytes) -> str:
    """A user handle as the browser sends it back (base64url)."""
    return bytes_to_base64url(handle)


def _why(exc: Exception) -> str:
    """The library's reason, which names a check, never a secret; capped."""
    return (str(exc) or type(exc).__name__)[:120]
