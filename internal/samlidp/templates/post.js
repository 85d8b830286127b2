// Submits the SAML response form as soon as the page is loaded; the
// "Continue" button stays for browsers without script.
document.addEventListener("DOMContentLoaded", function () {
  var f = document.getElementById("saml-post");
  if (f && f.getAttribute("data-autosubmit") === "1") { f.submit(); }
});
