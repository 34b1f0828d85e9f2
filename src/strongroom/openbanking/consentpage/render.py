"""The consent page's HTML: every value that comes from a request, a client or a consent is
escaped (html.escape, quotes included); there is no inline script or style (the policy
forbids both: model.content_security_policy), the page's script reads what it needs from the
DOM. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Final

from strongroom.openbanking.consentpage.model import (
    DECISION_PATH,
    SCRIPT_PATH,
    STYLE_PATH,
    PageView,
    Stage,
)

# What the customer reads for each refusal the page shows (its code is shown beside it).
MESSAGES: Final[Mapping[str, str]] = {
    "invalid_request_uri": "This request is unknown, has expired or was decided already. "
    "Go back to the provider and start again.",
    "invalid_request": "This request is malformed. Go back to the provider and start again.",
    "invalid_client": "The provider that sent you here is not known or not allowed now.",
    "customer_sign_in_required": "Sign in to decide: your session is missing or has ended.",
    "consent_decider_forbidden": "Only a customer of this account provider can decide. Sign "
    "out and sign in as the customer.",
    "consent_page_forged": "This decision did not come from this page. Go back and decide again.",
    "step_up_required": "Confirm it is you (your authenticator app or a passkey) first.",
    "consent_accounts_invalid": "Choose the account or accounts to share from the list.",
    "consent_state": "This consent cannot be decided any more.",
    "not_found": "This consent is gone.",
}


def _e(text: str) -> str:
    return escape(text, quote=True)


def _document(title: str, body: str, stage: str) -> bytes:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n"
        f'<link rel="stylesheet" href="{STYLE_PATH}">\n'
        f'<script src="{SCRIPT_PATH}" defer></script>\n'
        f'</head>\n<body data-stage="{_e(stage)}">\n<main>\n{body}\n'
        '<p id="status" role="status" aria-live="polite"></p>\n'
        "</main>\n</body>\n</html>\n"
    ).encode()


def _list(items: Iterable[str]) -> str:
    return "".join(f"<li>{_e(item)}</li>" for item in items)


def page(view: PageView) -> bytes:
    """The page of `view.stage`: what the consent grants, then sign in, sign out, step up or
    the decision form."""
    client = view.pending.client_name
    grant = view.grant
    details = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in grant.details)
    parts = [
        f'<p class="provider">{_e(view.tenant_name)}</p>',
        f'<h1 id="client">{_e(client)} asks for your consent</h1>',
        '<section id="request" aria-labelledby="grant-title">',
        f'<h2 id="grant-title">{_e(grant.title)}</h2>',
        f"<p>{_e(client)} will be able to see or do:</p>",
        f'<ul id="grant-items">{_list(grant.items)}</ul>',
        f'<dl id="grant-details">{details}</dl>' if details else "",
        f'<p id="expiry">{_e(grant.expiry)}</p>',
        "</section>",
        _STAGES[view.stage](view),
    ]
    return _document(f"{client}: your consent", "\n".join(p for p in parts if p), view.stage)


def _sign_in(view: PageView) -> str:
    tenant = _e(view.tenant_name)
    return f"""<section id="signin" aria-labelledby="signin-title">
<h2 id="signin-title">Sign in to {tenant} to decide</h2>
<form id="signin-form">
<input type="hidden" id="tenant" value="{tenant}">
<p><label for="email">Email</label>
<input id="email" type="email" autocomplete="username webauthn" required></p>
<p><label for="password">Password</label>
<input id="password" type="password" autocomplete="current-password" required></p>
<p><label for="totp">Code from your authenticator app, if you use one</label>
<input id="totp" inputmode="numeric" autocomplete="one-time-code" maxlength="6"></p>
<p><button id="signin-password" type="submit">Sign in</button>
<button id="signin-passkey" type="button">Sign in with a passkey</button></p>
</form>
</section>"""


def _other_user(view: PageView) -> str:
    return f"""<section id="other-user" aria-labelledby="other-title">
<h2 id="other-title">You are signed in as someone else</h2>
<p>Only a customer of {_e(view.tenant_name)} can decide on this request. Sign out, then sign in
as that customer.</p>
<p><button id="signout" type="button">Sign out</button></p>
</section>"""


def _step_up(view: PageView) -> str:
    totp = (
        """<form id="step-up-form">
<p><label for="step-up-code">Code from your authenticator app</label>
<input id="step-up-code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" required>
<button id="step-up-totp" type="submit">Confirm</button></p>
</form>"""
        if view.totp_enrolled
        else ""
    )
    return f"""<section id="step-up" aria-labelledby="step-up-title">
<h2 id="step-up-title">Confirm it is you</h2>
<p>Before you decide, confirm with your authenticator app or a passkey.</p>
{totp}
<p><button id="step-up-passkey" type="button">Confirm with a passkey</button>
<button id="signout" type="button">Sign out</button></p>
</section>"""


def _decide(view: PageView) -> str:
    assert view.csrf_token is not None
    pending = view.pending
    kind = "checkbox" if view.several_accounts else "radio"
    rows = []
    for index, account in enumerate(view.accounts):
        # A radio group is required as a whole (the first radio carries it); Reject skips it.
        required = " required" if kind == "radio" and index == 0 else ""
        rows.append(
            f'<p><label><input type="{kind}" name="account_id" value="{_e(account.id)}" '
            f'id="account-{_e(account.id)}"{required}> {_e(account.label)}</label></p>'
        )
    legend = "Choose the accounts to share" if view.several_accounts else "Choose the account"
    accounts = "\n".join(rows) or (
        '<p id="no-accounts">You have no account this provider can use for this request.</p>'
    )
    approve_disabled = "" if view.accounts else " disabled"
    return f"""<form id="decision-form" method="post" action="{DECISION_PATH}">
<input type="hidden" name="client_id" value="{_e(pending.client_id)}">
<input type="hidden" name="request_uri" value="{_e(view.request_uri)}">
<input type="hidden" name="csrf_token" value="{_e(view.csrf_token)}">
<fieldset id="accounts"><legend>{legend}</legend>
{accounts}
</fieldset>
<p><button id="approve" type="submit" name="decision" value="approve"{approve_disabled}>
Approve</button>
<button id="reject" type="submit" name="decision" value="reject" formnovalidate>Reject</button></p>
</form>
<p><button id="signout" type="button">Sign out</button></p>"""


_STAGES: Final = {
    Stage.SIGN_IN: _sign_in,
    Stage.OTHER_USER: _other_user,
    Stage.STEP_UP: _step_up,
    Stage.DECIDE: _decide,
}
assert set(_STAGES) == set(Stage)


def error_page(code: str, detail: str, back: str | None = None) -> bytes:
    """A refusal as the customer reads it: what happened, its code, and (for one the customer
    can mend: sign in, step up, choose again) the way back to the request, a relative URL of
    this page's own (never another site's)."""
    assert back is None or (back.startswith("/") and not back.startswith("//"))
    message = MESSAGES.get(code, detail)
    link = f'<p><a id="back" href="{_e(back)}">Back to the request</a></p>' if back else ""
    body = f"""<h1>This request cannot go on</h1>
<p id="error" data-code="{_e(code)}">{_e(message)}</p>
<p class="code">Code: <code>{_e(code)}</code></p>
{link}"""
    return _document("This request cannot go on", body, "error")
