// autopost.js: submits the SAML HTTP-POST form (SAML 2.0 Bindings §3.5) as
// soon as the page has loaded. A separate file because the CSP allows no
// inline script; without JavaScript the visible Continue button does the same.
(function () {
  "use strict";
  var form = document.getElementById("saml-post");
  if (!form) {
    return;
  }
  var button = document.getElementById("continue");
  if (button) {
    button.textContent = "Signing in…";
  }
  // The prototype's submit, in case a field were ever named "submit".
  HTMLFormElement.prototype.submit.call(form);
})();
