// portal.js: the portal's search box, keyboard moves and "Copy link" buttons.
// The page works without it (every role has its Console button and link);
// this only adds the comforts. No inline script anywhere: CSP script-src 'self'.
(function () {
  "use strict";
  var box = document.getElementById("search-box");
  var input = document.getElementById("role-search");
  var form = document.getElementById("roles");
  if (!box || !input || !form) {
    return;
  }
  document.documentElement.classList.add("js");
  box.hidden = false;

  var roles = Array.prototype.slice.call(form.querySelectorAll("li.role"));
  var texts = roles.map(function (r) { return r.getAttribute("data-search") || ""; });
  var accounts = Array.prototype.slice.call(form.querySelectorAll("section.account"));
  var count = document.getElementById("role-count");
  var countText = count ? count.textContent : "";
  var noMatch = document.getElementById("no-match");

  // filter shows the roles whose text holds every word typed (any order).
  function filter() {
    var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    for (var i = 0; i < roles.length; i++) {
      var ok = true;
      for (var j = 0; j < terms.length && ok; j++) {
        ok = texts[i].indexOf(terms[j]) >= 0;
      }
      roles[i].hidden = !ok;
      if (ok) {
        shown++;
      }
    }
    accounts.forEach(function (a) {
      a.hidden = !a.querySelector("li.role:not([hidden])");
    });
    if (count) {
      count.textContent = terms.length ? shown + " of " + roles.length + " roles match" : countText;
    }
    if (noMatch) {
      noMatch.hidden = shown > 0;
    }
  }

  function visibleButtons() {
    var out = [];
    for (var i = 0; i < roles.length; i++) {
      var b = roles[i].hidden ? null : roles[i].querySelector("button.console");
      if (b) {
        out.push(b); // roles of another partition have none
      }
    }
    return out;
  }

  input.addEventListener("input", filter);
  input.addEventListener("keydown", function (e) {
    var buttons = visibleButtons();
    if (e.key === "ArrowDown" && buttons.length) {
      e.preventDefault();
      buttons[0].focus();
    } else if (e.key === "Enter") {
      // One match: open it. Several: go to the first, so that a stray
      // Enter never signs in to a role the user did not see chosen.
      e.preventDefault();
      if (buttons.length === 1) {
        buttons[0].click();
      } else if (buttons.length) {
        buttons[0].focus();
      }
    } else if (e.key === "Escape" && input.value) {
      e.preventDefault();
      input.value = "";
      filter();
    }
  });

  // Arrow keys move between the Console buttons of the visible roles.
  form.addEventListener("keydown", function (e) {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") {
      return;
    }
    var li = e.target.closest ? e.target.closest("li.role") : null;
    if (!li || !li.querySelector("button.console")) {
      return;
    }
    var buttons = visibleButtons();
    var i = buttons.indexOf(li.querySelector("button.console"));
    e.preventDefault();
    if (e.key === "ArrowDown" && i + 1 < buttons.length) {
      buttons[i + 1].focus();
    } else if (e.key === "ArrowUp") {
      if (i > 0) {
        buttons[i - 1].focus();
      } else {
        input.focus();
      }
    }
  });

  // "/" focuses the search box, unless the user is typing somewhere.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) {
      return;
    }
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) {
      return;
    }
    e.preventDefault();
    input.focus();
    input.select();
  });

  form.addEventListener("click", function (e) {
    var btn = e.target.closest ? e.target.closest("button.copy") : null;
    if (!btn) {
      return;
    }
    e.preventDefault();
    var a = btn.parentNode.querySelector("a.deeplink");
    if (!a) {
      return;
    }
    var link = a.href;
    var done = function () {
      var label = btn.textContent;
      btn.textContent = "Copied";
      setTimeout(function () { btn.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(link).then(done, function () { window.prompt("Copy this link:", link); });
    } else {
      window.prompt("Copy this link:", link);
    }
  });

  // A search typed before the script ran, or kept by the browser on Back.
  if (input.value) {
    filter();
  }
})();
