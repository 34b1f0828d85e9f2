"use strict";
// The consent page's only script (served by Strongroom, no CDN, no inline code): signing in,
// stepping up and signing out through this origin's /v1/auth routes. The session lives in an
// HttpOnly, SameSite=Strict cookie that this script never sees. The decision itself is the
// page's plain form (no script needed to approve or reject).

const base64url = {
  toBuffer(text) {
    const plain = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = plain + "=".repeat((4 - (plain.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  },
  fromBuffer(buffer) {
    let text = "";
    for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

function say(text) {
  document.getElementById("status").textContent = text;
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let value = {};
  try {
    value = text ? JSON.parse(text) : {};
  } catch (ignored) {
    value = {};
  }
  if (!response.ok) {
    const error = new Error(value.detail || "the server refused (" + response.status + ")");
    error.code = value.code || String(response.status);
    throw error;
  }
  return value;
}

// A navigation of this page's own: the browser sends the SameSite=Strict cookie with it
// (the TPP's redirect here, from another site, came without it).
function again() {
  window.location.replace(window.location.href);
}

function assertionOptions(options) {
  return {
    ...options,
    challenge: base64url.toBuffer(options.challenge),
    allowCredentials: (options.allowCredentials || []).map((c) => ({
      ...c,
      id: base64url.toBuffer(c.id),
    })),
  };
}

function assertionJSON(credential) {
  const response = credential.response;
  const answer = {
    id: credential.id,
    rawId: base64url.fromBuffer(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment,
    clientExtensionResults: credential.getClientExtensionResults(),
    response: {
      clientDataJSON: base64url.fromBuffer(response.clientDataJSON),
      authenticatorData: base64url.fromBuffer(response.authenticatorData),
      signature: base64url.fromBuffer(response.signature),
    },
  };
  if (response.userHandle) answer.response.userHandle = base64url.fromBuffer(response.userHandle);
  return answer;
}

async function passkey(optionsPath, optionsBody) {
  const begun = await api("POST", optionsPath, optionsBody);
  const credential = await navigator.credentials.get({
    publicKey: assertionOptions(begun.options),
  });
  return { challenge_id: begun.challenge_id, credential: assertionJSON(credential) };
}

function on(id, event, handler) {
  const element = document.getElementById(id);
  if (element === null) return;
  element.addEventListener(event, async (e) => {
    if (event === "submit") e.preventDefault();
    try {
      await handler();
    } catch (error) {
      say(error.message + (error.code ? " (" + error.code + ")" : ""));
    }
  });
}

function field(id) {
  const element = document.getElementById(id);
  return element === null ? "" : element.value.trim();
}

function signIn() {
  on("signin-form", "submit", async () => {
    say("Signing in\u2026");
    try {
      await api("POST", "/v1/auth/sessions", {
        tenant: field("tenant"),
        email: field("email"),
        password: document.getElementById("password").value,
        totp: field("totp") || null,
        cookie: true,
      });
    } catch (error) {
      if (error.code === "totp_required") {
        document.getElementById("totp").focus();
        say("Enter the code from your authenticator app too.");
        return;
      }
      throw error;
    }
    again();
  });
  on("signin-passkey", "click", async () => {
    const answer = await passkey("/v1/auth/passkeys/authentication/options", {
      tenant: field("tenant"),
    });
    await api("POST", "/v1/auth/passkeys/authentication", { ...answer, cookie: true });
    again();
  });
  // Signed in already, the customer came back from the TPP's site without the cookie: a
  // same-origin request carries it, and one navigation of our own brings it to the page.
  const once = "strongroom.consent.checked:" + window.location.search;
  if (window.sessionStorage.getItem(once) === null) {
    window.sessionStorage.setItem(once, "1");
    api("GET", "/v1/auth/sessions/current").then(again, () => undefined);
  }
}

function stepUp() {
  on("step-up-form", "submit", async () => {
    say("Confirming\u2026");
    await api("POST", "/v1/auth/step-up", { totp: field("step-up-code") });
    again();
  });
  on("step-up-passkey", "click", async () => {
    await api("POST", "/v1/auth/step-up", await passkey("/v1/auth/step-up/options"));
    again();
  });
}

function decide() {
  const form = document.getElementById("decision-form");
  if (form === null) return;
  form.addEventListener("submit", (event) => {
    const approving = event.submitter && event.submitter.value === "approve";
    const chosen = form.querySelectorAll('input[name="account_id"]:checked').length;
    if (approving && chosen === 0) {
      event.preventDefault();
      say("Choose an account to share first.");
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const stage = document.body.dataset.stage;
  if (stage === "sign_in") signIn();
  if (stage === "step_up") stepUp();
  if (stage === "decide") decide();
  on("signout", "click", async () => {
    await api("DELETE", "/v1/auth/sessions/current");
    again();
  });
});
