"use strict";
// The sign-in page's only script (served by Strongroom, no CDN): WebAuthn through
// navigator.credentials, everything else through fetch to this origin's /v1/auth routes.
// The session lives in an HttpOnly cookie: this script never sees the token.

const b64url = {
  decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

function show(label, value) {
  document.getElementById("status").textContent =
    label + "\n" + JSON.stringify(value, null, 2);
}

async function call(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const value = text ? JSON.parse(text) : {};
  if (!response.ok) throw Object.assign(new Error(value.code || response.status), { value });
  return value;
}

function creationOptions(options) {
  return {
    ...options,
    challenge: b64url.decode(options.challenge),
    user: { ...options.user, id: b64url.decode(options.user.id) },
    excludeCredentials: (options.excludeCredentials || []).map((c) => ({
      ...c,
      id: b64url.decode(c.id),
    })),
  };
}

function requestOptions(options) {
  return {
    ...options,
    challenge: b64url.decode(options.challenge),
    allowCredentials: (options.allowCredentials || []).map((c) => ({
      ...c,
      id: b64url.decode(c.id),
    })),
  };
}

function credentialJSON(credential) {
  const response = credential.response;
  const out = {
    id: credential.id,
    rawId: b64url.encode(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment,
    clientExtensionResults: credential.getClientExtensionResults(),
    response: { clientDataJSON: b64url.encode(response.clientDataJSON) },
  };
  if (response.attestationObject) {
    out.response.attestationObject = b64url.encode(response.attestationObject);
    out.response.transports = response.getTransports ? response.getTransports() : [];
  } else {
    out.response.authenticatorData = b64url.encode(response.authenticatorData);
    out.response.signature = b64url.encode(response.signature);
    if (response.userHandle) out.response.userHandle = b64url.encode(response.userHandle);
  }
  return out;
}

async function attempt(label, work) {
  try {
    show(label, await work());
  } catch (error) {
    show(label + " failed", error.value || String(error));
  }
}

function value(id) {
  return document.getElementById(id).value.trim();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt("signed in", () =>
      call("POST", "/v1/auth/sessions", {
        tenant: value("tenant"),
        email: value("email"),
        password: document.getElementById("password").value,
        totp: value("totp") || null,
        cookie: true,
      }),
    );
  });
  document.getElementById("signin-passkey").addEventListener("click", () =>
    attempt("signed in", async () => {
      const begun = await call("POST", "/v1/auth/passkeys/authentication/options", {
        tenant: value("tenant"),
      });
      const credential = await navigator.credentials.get({
        publicKey: requestOptions(begun.options),
      });
      return call("POST", "/v1/auth/passkeys/authentication", {
        challenge_id: begun.challenge_id,
        credential: credentialJSON(credential),
        cookie: true,
      });
    }),
  );
  document.getElementById("register-passkey").addEventListener("click", () =>
    attempt("passkey registered", async () => {
      const begun = await call("POST", "/v1/auth/passkeys/registration/options");
      const credential = await navigator.credentials.create({
        publicKey: creationOptions(begun.options),
      });
      return call("POST", "/v1/auth/passkeys/registration", {
        challenge_id: begun.challenge_id,
        credential: credentialJSON(credential),
      });
    }),
  );
  document.getElementById("step-up-passkey").addEventListener("click", () =>
    attempt("stepped up", async () => {
      const begun = await call("POST", "/v1/auth/step-up/options");
      const credential = await navigator.credentials.get({
        publicKey: requestOptions(begun.options),
      });
      return call("POST", "/v1/auth/step-up", {
        challenge_id: begun.challenge_id,
        credential: credentialJSON(credential),
      });
    }),
  );
  document.getElementById("whoami").addEventListener("click", () =>
    attempt("session", () => call("GET", "/v1/auth/sessions/current")),
  );
  document.getElementById("signout").addEventListener("click", () =>
    attempt("signed out", () => call("DELETE", "/v1/auth/sessions/current")),
  );
});
