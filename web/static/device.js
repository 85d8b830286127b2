// device.js: shows the code typed on /device as XXXX-XXXX while typing
// (upper case, the dash put in after four letters). The server normalizes
// the code anyway; without JavaScript the field works the same.
(function () {
  "use strict";
  var input = document.getElementById("user_code");
  if (!input) {
    return;
  }
  input.addEventListener("input", function () {
    var letters = input.value.toUpperCase().replace(/[^A-Z]/g, "").slice(0, 8);
    var shown = letters.length > 4 ? letters.slice(0, 4) + "-" + letters.slice(4) : letters;
    if (shown !== input.value) {
      input.value = shown;
    }
  });
})();
