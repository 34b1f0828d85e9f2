"use strict";
// The consent dashboard's only script (served by Strongroom, no CDN): it lists the signed-in
// customer's open banking consents and revokes one in one click, through fetch to this
// origin's /v1/openbanking/consents routes. The session lives in an HttpOnly cookie: this
// script never sees it. Everything shown is set as text (textContent), never as HTML.

const API = "/v1/openbanking/consents";
const PAGE_SIZE = 100;
const PAGES_MAX = 20; // 2,000 consents shown at most: past that the page says so
const LABELS = {
  AUTH: "Active",
  AWAU: "Awaiting authorisation",
  RJCT: "Rejected",
  EXPD: "Expired",
  CANC: "Revoked",
  COND: "Used",
};

function say(text) {
  document.getElementById("status").textContent = text;
}

async function call(method, path) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { accept: "application/json" },
  });
  if (response.status === 401) {
    // The session ended (signed out, expired, idle): sign in again.
    window.location.assign("/signin");
    throw new Error("signed out");
  }
  const text = await response.text();
  const value = text ? JSON.parse(text) : {};
  if (!response.ok) {
    throw new Error(value.detail || value.code || "HTTP " + response.status);
  }
  return value;
}

function day(timestamp) {
  if (!timestamp) return "";
  return new Date(timestamp).toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: "UTC",
  }) + " UTC";
}

function label(consent) {
  if (consent.status === "AUTH" && !consent.in_force) return "Expired";
  return LABELS[consent.status] || consent.status;
}

function cell(row, name, text) {
  const td = document.createElement("td");
  td.className = name;
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function revocable(consent) {
  // A single payment's consent is used once and never revoked (UK Open Banking v4.0).
  return consent.in_force && consent.kind !== "domestic_payment";
}

function render(consent) {
  const row = document.createElement("tr");
  row.dataset.consentId = consent.id;
  cell(row, "tpp", consent.tpp.name || consent.tpp.id);
  cell(row, "covers", consent.covers);
  cell(row, "accounts", consent.account_ids.join(", "));
  cell(row, "granted", day(consent.authorised_at || consent.created_at));
  const expires = cell(row, "expires", consent.expires_at ? day(consent.expires_at) : "No end date");
  if (consent.expires_at) expires.dataset.expiresAt = consent.expires_at;
  cell(row, "status", label(consent));
  const action = cell(row, "action", "");
  if (revocable(consent)) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "revoke";
    button.textContent = "Revoke";
    button.addEventListener("click", () => revoke(consent, row, button));
    action.appendChild(button);
  }
  return row;
}

async function revoke(consent, row, button) {
  button.disabled = true;
  say("revoking access of " + (consent.tpp.name || consent.tpp.id));
  try {
    const after = await call("POST", API + "/" + encodeURIComponent(consent.id) + "/revoke");
    row.replaceWith(render(after));
    say("revoked: " + (after.tpp.name || after.tpp.id) + " has no access any more");
  } catch (error) {
    button.disabled = false;
    say("could not revoke: " + error.message);
  }
}

async function load() {
  const consents = [];
  let after = null;
  let more = false;
  for (let page = 0; page < PAGES_MAX; page += 1) {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (after !== null) query.set("starting_after", after);
    const body = await call("GET", API + "?" + query.toString());
    consents.push(...body.data);
    more = body.has_more && body.data.length > 0;
    if (!more) break;
    after = body.data[body.data.length - 1].id;
  }
  const rows = document.getElementById("consent-rows");
  rows.replaceChildren(...consents.reverse().map(render)); // newest first
  document.getElementById("consents").hidden = consents.length === 0;
  document.getElementById("empty").hidden = consents.length !== 0;
  say(more ? "showing " + consents.length + " of your consents: there are more" : "");
}

document.addEventListener("DOMContentLoaded", () => {
  load().catch((error) => say("could not load your consents: " + error.message));
});
