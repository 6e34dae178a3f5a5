// Garde — security keys and passkeys (WebAuthn). A dependency-free ES
// module, loaded with <script type="module" src="/static/webauthn.js?v=…">
// by the pages that need it. It carries no text: every message comes from
// the data-msg-* attributes the server rendered in the page's language.
//
// It wires every element with data-webauthn="register" | "login" |
// "passwordless" | "conditional":
//   data-begin, data-finish  the broker's JSON endpoints;
//   the element's form (form="…" attribute, data-form="<id>", or the
//   enclosing <form>) supplies the hidden fields flow_id, step, csrf_token
//   and, for register, the text input name.
//
// Protocol (JSON over same-origin POST):
//   begin   → {flow_id, step, csrf_token}
//           ← {publicKey: {...}} (binary fields base64url) | {error, message}
//   finish  → {flow_id, step, csrf_token, name?, credential}
//           ← {redirect: url} | {error, message}
//
// Elements marked data-webauthn-reveal are rendered hidden (they are useless
// without this script) and shown once WebAuthn is known to work.
//
// Messages go to the page's [data-webauthn-status] region (role="alert"),
// which holds data-msg-prefix, data-msg-cancelled, data-msg-exists,
// data-msg-security, data-msg-unsupported and data-msg-failed.

const KINDS = ['register', 'login', 'passwordless', 'conditional'];

// ---- base64url <-> ArrayBuffer ------------------------------------------

export function b64urlToBuf(s) {
  if (typeof s !== 'string') {
    throw new TypeError('base64url: not a string');
  }
  let b64 = s.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  while (b64.length % 4 !== 0) {
    b64 += '=';
  }
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) {
    out[i] = bin.charCodeAt(i);
  }
  return out.buffer;
}

export function bufToB64url(buf) {
  if (buf === null || buf === undefined) {
    return null;
  }
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let bin = '';
  for (let i = 0; i < bytes.length; i++) {
    bin += String.fromCharCode(bytes[i]);
  }
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// ---- options: JSON → WebAuthn --------------------------------------------

function decodeDescriptors(list) {
  if (!Array.isArray(list)) {
    return list;
  }
  return list.map((d) => ({ ...d, id: b64urlToBuf(d.id) }));
}

// decodeCreationOptions turns the JSON options of navigator.credentials
// .create into the binary form the browser wants.
export function decodeCreationOptions(pk) {
  const o = { ...pk, challenge: b64urlToBuf(pk.challenge) };
  if (pk.user) {
    o.user = { ...pk.user, id: b64urlToBuf(pk.user.id) };
  }
  if (pk.excludeCredentials) {
    o.excludeCredentials = decodeDescriptors(pk.excludeCredentials);
  }
  return o;
}

// decodeRequestOptions does the same for navigator.credentials.get.
export function decodeRequestOptions(pk) {
  const o = { ...pk, challenge: b64urlToBuf(pk.challenge) };
  if (pk.allowCredentials) {
    o.allowCredentials = decodeDescriptors(pk.allowCredentials);
  }
  return o;
}

// ---- credential: WebAuthn → JSON -----------------------------------------

// credentialToJSON returns the standard JSON form of a PublicKeyCredential
// (RegistrationResponseJSON / AuthenticationResponseJSON).
export function credentialToJSON(cred) {
  if (typeof cred.toJSON === 'function') {
    try {
      return cred.toJSON();
    } catch (e) {
      // Some authenticator extensions hand back objects whose toJSON
      // throws; build the JSON by hand below.
    }
  }
  const r = cred.response;
  const json = {
    id: cred.id,
    rawId: bufToB64url(cred.rawId),
    type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment || undefined,
    clientExtensionResults: typeof cred.getClientExtensionResults === 'function' ? cred.getClientExtensionResults() : {},
    response: { clientDataJSON: bufToB64url(r.clientDataJSON) },
  };
  if (r.attestationObject) {
    json.response.attestationObject = bufToB64url(r.attestationObject);
    if (typeof r.getTransports === 'function') {
      json.response.transports = r.getTransports();
    }
    if (typeof r.getAuthenticatorData === 'function') {
      json.response.authenticatorData = bufToB64url(r.getAuthenticatorData());
    }
  } else {
    json.response.authenticatorData = bufToB64url(r.authenticatorData);
    json.response.signature = bufToB64url(r.signature);
    json.response.userHandle = r.userHandle ? bufToB64url(r.userHandle) : null;
  }
  return json;
}

// ---- page wiring ---------------------------------------------------------

// messageFor maps a DOMException (or other failure) to a data-msg-* name,
// or '' for silence.
export function messageFor(err, kind) {
  const name = err && err.name;
  switch (name) {
    case 'AbortError':
      return kind === 'conditional' ? '' : 'cancelled';
    case 'NotAllowedError':
      return 'cancelled';
    case 'InvalidStateError':
      return kind === 'register' ? 'exists' : 'failed';
    case 'SecurityError':
      return 'security';
    case 'NotSupportedError':
      return 'unsupported';
    default:
      return 'failed';
  }
}

// safeRedirect accepts only http(s) URLs (relative ones resolve against the
// page), so a broken or hostile reply cannot run javascript:.
export function safeRedirect(url, base) {
  try {
    const u = new URL(url, base);
    if (u.protocol === 'https:' || u.protocol === 'http:') {
      return u.href;
    }
  } catch (e) {
    // fall through
  }
  return '';
}

class ServerError extends Error {
  constructor(message) {
    super(message || '');
    this.name = 'ServerError';
    this.serverMessage = message || '';
  }
}

function webAuthnSupported() {
  return (
    typeof window !== 'undefined' &&
    window.isSecureContext !== false &&
    typeof window.PublicKeyCredential === 'function' &&
    typeof navigator !== 'undefined' &&
    navigator.credentials &&
    typeof navigator.credentials.get === 'function'
  );
}

function formOf(el) {
  if (el.form) {
    return el.form;
  }
  if (el.dataset.form) {
    const f = document.getElementById(el.dataset.form);
    if (f) {
      return f;
    }
  }
  return el.closest('form');
}

function field(form, name) {
  if (!form || !form.elements) {
    return null;
  }
  const f = form.elements.namedItem(name);
  return f && 'value' in f ? f : null;
}

function statusRegion(el) {
  const form = formOf(el);
  return (
    (el.closest && el.closest('[data-webauthn-scope]')?.querySelector('[data-webauthn-status]')) ||
    (form && form.querySelector('[data-webauthn-status]')) ||
    document.querySelector('[data-webauthn-status]')
  );
}

function msgText(region, el, key) {
  const attr = 'msg' + key.charAt(0).toUpperCase() + key.slice(1);
  return (el && el.dataset[attr]) || (region && region.dataset[attr]) || (region && region.dataset.msgFailed) || '';
}

function clearStatus(region) {
  if (region) {
    region.replaceChildren();
  }
}

function showStatus(region, text) {
  if (!region || !text) {
    return;
  }
  const box = document.createElement('div');
  box.className = 'alert alert-error';
  const p = document.createElement('p');
  if (region.dataset.msgPrefix) {
    const strong = document.createElement('strong');
    strong.className = 'alert-label';
    strong.textContent = region.dataset.msgPrefix;
    p.append(strong, ' ');
  }
  p.append(text);
  box.append(p);
  region.replaceChildren(box);
}

// sameOrigin resolves an endpoint URL against the page and accepts it only
// on the page's own origin (the requests carry cookies and the CSRF token).
export function sameOrigin(url, base) {
  if (!url) {
    return '';
  }
  try {
    const u = new URL(url, base);
    if (u.origin === new URL(base).origin && (u.protocol === 'https:' || u.protocol === 'http:')) {
      return u.href;
    }
  } catch (e) {
    // fall through
  }
  return '';
}

// jsonHeaders asks for the replies' messages in the page's language, which
// may differ from the browser's (?lang= on the page).
function jsonHeaders() {
  const h = { 'Content-Type': 'application/json', Accept: 'application/json' };
  const lang = document.documentElement.lang;
  if (lang) {
    h['Accept-Language'] = lang;
  }
  return h;
}

async function postJSON(endpoint, body, signal) {
  const url = sameOrigin(endpoint, window.location.href);
  if (!url) {
    throw new ServerError('');
  }
  let res;
  try {
    res = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: jsonHeaders(),
      body: JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e && e.name === 'AbortError') {
      throw e;
    }
    throw new ServerError('');
  }
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    throw new ServerError('');
  }
  if (!data || typeof data !== 'object') {
    throw new ServerError('');
  }
  if (data.error || !res.ok) {
    throw new ServerError(typeof data.message === 'string' ? data.message : '');
  }
  return data;
}

function fieldsOf(el) {
  const form = formOf(el);
  const v = (name) => {
    const f = field(form, name);
    return f ? f.value : '';
  };
  return { flow_id: v('flow_id'), step: v('step'), csrf_token: v('csrf_token') };
}

const buttons = () => Array.from(document.querySelectorAll('[data-webauthn]')).filter((b) => b.dataset.webauthn !== 'conditional');

function setBusy(busy, active) {
  for (const b of buttons()) {
    b.disabled = busy;
  }
  if (active) {
    if (busy) {
      active.setAttribute('aria-busy', 'true');
    } else {
      active.removeAttribute('aria-busy');
    }
  }
}

// ceremony runs begin → browser → finish for el. signal aborts a
// conditional request.
async function ceremony(el, kind, signal) {
  const base = fieldsOf(el);
  let name;
  if (kind === 'register') {
    const input = field(formOf(el), 'name');
    if (input) {
      if (typeof input.reportValidity === 'function' && !input.reportValidity()) {
        return;
      }
      name = input.value.trim();
    }
  }
  const begin = await postJSON(el.dataset.begin, base, signal);
  if (!begin.publicKey || typeof begin.publicKey !== 'object') {
    throw new ServerError('');
  }
  let cred;
  if (kind === 'register') {
    cred = await navigator.credentials.create({ publicKey: decodeCreationOptions(begin.publicKey) });
  } else {
    const opts = { publicKey: decodeRequestOptions(begin.publicKey) };
    if (kind === 'conditional') {
      opts.mediation = 'conditional';
      opts.signal = signal;
    }
    cred = await navigator.credentials.get(opts);
  }
  if (!cred) {
    throw new DOMException('', 'NotAllowedError');
  }
  const body = { ...base, credential: credentialToJSON(cred) };
  if (name !== undefined) {
    body.name = name;
  }
  const done = await postJSON(el.dataset.finish, body);
  const to = safeRedirect(done.redirect, window.location.href);
  if (!to) {
    throw new ServerError('');
  }
  window.location.assign(to);
}

function report(el, kind, err) {
  const region = statusRegion(el);
  if (err instanceof ServerError) {
    showStatus(region, err.serverMessage || msgText(region, el, 'failed'));
    return;
  }
  const key = messageFor(err, kind);
  if (key) {
    showStatus(region, msgText(region, el, key));
  }
}

let conditional = null; // {controller, el} of the pending conditional request
let conditionalEl = null;

async function startConditional(el) {
  if (typeof PublicKeyCredential.isConditionalMediationAvailable !== 'function') {
    return;
  }
  let ok = false;
  try {
    ok = await PublicKeyCredential.isConditionalMediationAvailable();
  } catch (e) {
    ok = false;
  }
  if (!ok || conditional) {
    return;
  }
  const controller = new AbortController();
  conditional = { controller, el };
  try {
    await ceremony(el, 'conditional', controller.signal);
  } catch (err) {
    if (conditional && conditional.controller === controller) {
      report(el, 'conditional', err);
    }
  } finally {
    if (conditional && conditional.controller === controller) {
      conditional = null;
    }
  }
}

function abortConditional() {
  if (conditional) {
    const c = conditional;
    conditional = null;
    c.controller.abort();
  }
}

let running = false;

async function onClick(ev) {
  const el = ev.currentTarget;
  const kind = el.dataset.webauthn;
  ev.preventDefault();
  if (running) {
    return;
  }
  running = true;
  abortConditional();
  const region = statusRegion(el);
  clearStatus(region);
  setBusy(true, el);
  let failed = false;
  try {
    await ceremony(el, kind);
  } catch (err) {
    failed = true;
    report(el, kind, err);
  } finally {
    running = false;
    setBusy(false, el);
  }
  // A failed modal attempt ends the autofill offer too: start a fresh one.
  if (failed && conditionalEl) {
    startConditional(conditionalEl);
  }
}

export function init(root) {
  const els = Array.from(root.querySelectorAll('[data-webauthn]')).filter((el) => KINDS.includes(el.dataset.webauthn));
  if (els.length === 0) {
    return;
  }
  if (!webAuthnSupported()) {
    for (const el of els) {
      if (el.dataset.webauthn !== 'conditional') {
        el.hidden = true;
      }
    }
    // Say it once per region, not once per button.
    const shown = new Set();
    for (const el of els) {
      if (el.dataset.webauthn === 'conditional') {
        continue;
      }
      const region = statusRegion(el);
      if (region && !shown.has(region)) {
        shown.add(region);
        showStatus(region, msgText(region, el, 'unsupported'));
      }
    }
    return;
  }
  // Parts that are useless without this script (the key-registration form)
  // are rendered hidden; show them now.
  for (const el of root.querySelectorAll('[data-webauthn-reveal]')) {
    el.hidden = false;
  }
  for (const el of els) {
    if (el.dataset.webauthn === 'conditional') {
      conditionalEl = conditionalEl || el;
      continue;
    }
    el.addEventListener('click', onClick);
    // Enter in the key-name field starts the registration instead of
    // submitting the form.
    const form = formOf(el);
    if (form && el.dataset.webauthn === 'register') {
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        el.click();
      });
    }
  }
  if (conditionalEl) {
    // Submitting the password form ends the autofill offer quietly.
    const form = formOf(conditionalEl);
    if (form) {
      form.addEventListener('submit', abortConditional);
    }
    startConditional(conditionalEl);
  }
}

if (typeof document !== 'undefined' && typeof window !== 'undefined') {
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', () => init(document));
  } else {
    init(document);
  }
}
