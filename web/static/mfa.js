// mfa.js: the WebAuthn ceremonies of the second-factor pages. The server
// sends the options as JSON (binary fields in base64url); this turns them
// into what navigator.credentials expects, and the authenticator's answer
// back into JSON. Without JavaScript the other factors still work.
(function () {
  "use strict";

  function fromB64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64u(buf) {
    if (!buf) { return undefined; }
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // post sends a JSON request and returns the JSON answer. When the page
  // no longer fits the session, the error says to load the page again
  // (err.redirect), which then goes where the server sends it: a redirect
  // (the session ended: to the sign-in) or a 403 without a page to go to
  // (the CSRF token no longer matches, e.g. signed out in another tab).
  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      redirect: "manual",
      headers: { "Content-Type": "application/json", "X-Warden-CSRF": csrf, "Accept": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      if (r.type === "opaqueredirect") {
        var moved = new Error("Your sign-in has ended.");
        moved.redirect = window.location.href;
        throw moved;
      }
      return r.json().catch(function () { return null; }).then(function (j) {
        if (!r.ok) {
          j = j || {};
          var e = new Error(j.error || ("The server answered " + r.status + "."));
          e.redirect = j.redirect || (r.status === 403 ? window.location.href : undefined);
          e.fromServer = !!j.error; // a whole sentence that says what to do
          throw e;
        }
        if (!j || typeof j !== "object") { throw new Error("The server's answer was not understood."); }
        return j;
      });
    });
  }

  function say(box, text) {
    var s = box.querySelector(".passkey-status");
    if (s) { s.textContent = text; }
  }

  // failed shows why a ceremony did not work. The server's messages are
  // shown as they are (some say not to try again: a copied key); the
  // browser's are put in words a user can act on.
  function failed(box, button, err) {
    if (button) { button.disabled = false; }
    if (err && err.redirect) { window.location.assign(err.redirect); return; }
    if (err && err.fromServer) { say(box, err.message); return; }
    var msg;
    switch (err && err.name) {
      case "NotAllowedError":
        msg = "Cancelled, or no matching passkey or key was found.";
        break;
      case "InvalidStateError":
        msg = "This passkey or security key is already set up for your account.";
        break;
      case "SecurityError":
        // The page is not at the address passkeys are bound to (an IP
        // address, another host name): the browser refuses.
        msg = "Passkeys cannot be used at this address (" + window.location.host + "). Open this site at its usual address.";
        say(box, msg);
        return;
      default:
        msg = (err && err.message) || "That did not work.";
    }
    say(box, msg + " Try again.");
  }

  function unsupported(box) {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(box, "This browser cannot use passkeys or security keys.");
      return true;
    }
    return false;
  }

  function useKey(box, button) {
    if (unsupported(box)) { return; }
    button.disabled = true; // one ceremony at a time
    var csrf = box.getAttribute("data-csrf");
    say(box, "Waiting for your passkey or security key…");
    post(box.getAttribute("data-begin"), csrf).then(function (begin) {
      var o = begin.options.publicKey || begin.options;
      o.challenge = fromB64u(o.challenge);
      (o.allowCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
      return navigator.credentials.get({ publicKey: o }).then(function (cred) {
        var r = cred.response;
        return post(box.getAttribute("data-finish"), csrf, {
          ceremony: begin.ceremony,
          next: box.getAttribute("data-next"),
          credential: {
            id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
            authenticatorAttachment: cred.authenticatorAttachment || undefined,
            clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
            response: {
              clientDataJSON: toB64u(r.clientDataJSON),
              authenticatorData: toB64u(r.authenticatorData),
              signature: toB64u(r.signature),
              userHandle: toB64u(r.userHandle)
            }
          }
        });
      });
    }).then(function (done) {
      window.location.assign(done.redirect || "/");
    }).catch(function (err) { failed(box, button, err); });
  }

  function createKey(box, button) {
    if (unsupported(box)) { return; }
    button.disabled = true; // one ceremony at a time
    var csrf = box.getAttribute("data-csrf");
    var nameInput = document.getElementById("pkname");
    say(box, "Follow your browser's prompt…");
    post(box.getAttribute("data-begin"), csrf).then(function (begin) {
      var o = begin.options.publicKey || begin.options;
      o.challenge = fromB64u(o.challenge);
      o.user.id = fromB64u(o.user.id);
      (o.excludeCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
      return navigator.credentials.create({ publicKey: o }).then(function (cred) {
        var r = cred.response;
        return post(box.getAttribute("data-finish"), csrf, {
          ceremony: begin.ceremony,
          next: box.getAttribute("data-next"),
          name: nameInput ? nameInput.value : "",
          credential: {
            id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
            authenticatorAttachment: cred.authenticatorAttachment || undefined,
            clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
            response: {
              clientDataJSON: toB64u(r.clientDataJSON),
              attestationObject: toB64u(r.attestationObject),
              transports: r.getTransports ? r.getTransports() : undefined
            }
          }
        });
      });
    }).then(function (done) {
      if (!done.codes || !done.codes.length) {
        window.location.assign(done.redirect || "/account/security");
        return;
      }
      var panel = box.querySelector(".codes-panel"), list = panel.querySelector(".codes");
      done.codes.forEach(function (c) {
        var li = document.createElement("li"), code = document.createElement("code");
        code.textContent = c;
        li.appendChild(code);
        list.appendChild(li);
      });
      panel.querySelector("#codes-continue").setAttribute("href", done.redirect || "/account/security");
      panel.hidden = false;
      say(box, "Your passkey is set up.");
    }).catch(function (err) { failed(box, button, err); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    // The code page may be the answer to the password POST: show its own
    // URL, so that a reload fetches it rather than posting the password.
    var page = document.getElementById("mfa-challenge");
    if (page && page.getAttribute("data-url") && window.history && history.replaceState) {
      history.replaceState(null, "", page.getAttribute("data-url"));
    }
    var use = document.getElementById("passkey-use");
    if (use) { use.addEventListener("click", function () { useKey(use.closest(".passkey"), use); }); }
    var create = document.getElementById("passkey-create");
    if (create) { create.addEventListener("click", function () { createKey(create.closest(".passkey-setup"), create); }); }
  });
})();
