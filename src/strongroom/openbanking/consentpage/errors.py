"""The consent page's own refusals (see core.errors). The page answers each as an HTML page
naming its code (never a redirect to the TPP: the refusal is the customer's to read); the
codes are declared here so that the catalogue and docs/errors.md hold them.

None carries personal data, a session, a request_uri or a CSRF token.
"""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode, StrongroomError

CONSENT_PAGE_ERRORS: Final = (
    ErrorCode(
        "customer_sign_in_required",
        401,
        "Sign in as the customer the consent's account provider knows you as",
    ),
    ErrorCode(
        "consent_decider_forbidden",
        403,
        "The signed-in user is not a customer of the consent's account provider",
    ),
    ErrorCode(
        "consent_page_forged",
        403,
        "The decision did not come from this server's own consent page (its token or origin)",
    ),
)


class CustomerSignInRequired(StrongroomError):
    code = "customer_sign_in_required"
    status = 401


class DeciderForbidden(StrongroomError):
    code = "consent_decider_forbidden"
    status = 403


class Forged(StrongroomError):
    """A decision whose CSRF token is not the one the page gave this session for this
    authorization, or that a browser says another origin sent."""

    code = "consent_page_forged"
    status = 403
