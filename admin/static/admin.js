// Copy-to-clipboard for secrets shown once.
document.addEventListener("click", function (e) {
  var b = e.target.closest("button[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el || !navigator.clipboard) return;
  navigator.clipboard.writeText(el.textContent.trim()).then(function () {
    b.textContent = "Copied";
  });
});

// Passkeys: a form with data-passkey ("register", "signin" or "second")
// fetches the options of a ceremony from data-options, asks the browser's
// authenticator, and posts its answer as JSON in the form's credential
// field, with the challenge's id.
document.addEventListener("submit", function (e) {
  var f = e.target.closest("form[data-passkey]");
  if (!f || f.getAttribute("data-ready")) return;
  e.preventDefault();
  var out = f.querySelector(".passkey-error");
  function fail(msg) {
    if (out) {
      out.textContent = msg;
      out.hidden = false;
    }
  }
  var PKC = window.PublicKeyCredential;
  if (!PKC || !PKC.parseCreationOptionsFromJSON || !PKC.parseRequestOptionsFromJSON) {
    fail("This browser cannot use passkeys here. Use a code, or another browser.");
    return;
  }
  var body = new URLSearchParams();
  body.append("csrf", f.elements.csrf.value);
  if (f.elements.second) body.append("second", "1");
  var kind = f.getAttribute("data-passkey");
  fetch(f.getAttribute("data-options"), { method: "POST", body: body, credentials: "same-origin" })
    .then(function (res) {
      return res.json().then(function (data) {
        if (!res.ok) throw new Error(data.error_description || "The passkey request was refused.");
        return data;
      });
    })
    .then(function (data) {
      f.elements.challenge_id.value = data.challenge_id;
      var pk = data.options.publicKey;
      if (kind === "register") return navigator.credentials.create({ publicKey: PKC.parseCreationOptionsFromJSON(pk) });
      return navigator.credentials.get({ publicKey: PKC.parseRequestOptionsFromJSON(pk) });
    })
    .then(function (cred) {
      if (!cred) throw new Error("No passkey was chosen.");
      f.elements.credential.value = JSON.stringify(cred.toJSON());
      f.setAttribute("data-ready", "1");
      f.submit();
    })
    .catch(function (err) {
      fail(err && err.name === "NotAllowedError" ? "The passkey request was cancelled or timed out. Try again." : (err && err.message) || "The passkey request failed.");
    });
});
