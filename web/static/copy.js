// copy.js: every pre[data-copy] gets a "Copy" button before it that copies
// its text (the clipboard API, or a selection and execCommand where that
// is missing); without JavaScript the text is still there to select.
(function () {
  function copied(button, ok) {
    var label = button.textContent;
    button.textContent = ok ? "Copied" : "Press Ctrl+C to copy";
    window.setTimeout(function () { button.textContent = label; }, 2000);
  }
  function bySelection(pre) {
    var range = document.createRange();
    range.selectNodeContents(pre);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    if (ok) {
      sel.removeAllRanges();
    }
    return ok;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var blocks = document.querySelectorAll("pre[data-copy]");
    if (blocks.length === 0) {
      return;
    }
    document.documentElement.classList.add("js");
    blocks.forEach(function (pre) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy secondary small";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy the text below");
      button.addEventListener("click", function () {
        var text = pre.textContent;
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(function () { copied(button, true); },
            function () { copied(button, bySelection(pre)); });
        } else {
          copied(button, bySelection(pre));
        }
      });
      pre.parentNode.insertBefore(button, pre);
    });
  });
})();
