package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// evilPage is an upstream page whose script attacks the console at
// console (the page's own origin when console is ""): it reads the users
// page with the operator's cookies, through fetch and through a frame,
// and posts a new admin with a guessed CSRF token. It shows what it got
// and leaves it in window.attack.
func evilPage(console string) string {
	return `<!doctype html><html><head><title>Upstream page</title></head><body>
<h1>An upstream page</h1><pre id="out">running…</pre>
<script>
(async () => {
  const C = ` + jsString(console) + `;
  const out = {};
  try {
    const r = await fetch(C + "/admin/users", {credentials: "include"});
    const text = await r.text();
    out.read = "status " + r.status + (text.includes('name="csrf"') ? ", holds the CSRF token" : "") + ": " + text.slice(0, 60);
  } catch (e) { out.read = "blocked: " + e.name; }
  try {
    const r = await fetch("/admin/users", {credentials: "include"});
    out.readHere = "status " + r.status + ": " + (await r.text()).slice(0, 80);
  } catch (e) { out.readHere = "blocked: " + e.name; }
  try {
    await fetch(C + "/admin/users", {method: "POST", mode: "no-cors", credentials: "include",
      headers: {"Content-Type": "application/x-www-form-urlencoded"},
      body: "csrf=guess&email=evil%40example.com&name=Evil&password=evil+password+123&role=admin"});
    out.post = "sent";
  } catch (e) { out.post = "blocked: " + e.name; }
  out.frame = await new Promise(resolve => {
    const f = document.createElement("iframe");
    f.src = C + "/admin/users";
    const look = () => {
      try {
        const d = f.contentDocument;
        resolve(d && d.body ? "read: " + d.body.innerText.slice(0, 60) : "blocked: no document");
      } catch (e) { resolve("blocked: " + e.name); }
    };
    f.onload = look;
    setTimeout(look, 3000);
    document.body.appendChild(f);
  });
  document.getElementById("out").textContent = JSON.stringify(out, null, 2);
  window.attack = out;
})();
</script></body></html>`
}

// TestConsoleIsolationInChromium signs the operator in to the console in
// headless Chromium, then opens a page of the API behind the gateway (a
// public route, as a reflected-HTML bug would be) whose script attacks the
// console. With --console-addr the script can neither read the console
// (fetch, frame) nor post to it, and no user is created. With
// --console-same-origin, the opt-out, the same script reads the users page
// and its CSRF token: the attack this protects against.
func TestConsoleIsolationInChromium(t *testing.T) {
	type attack struct{ Read, ReadHere, Post, Frame string }
	run1 := func(t *testing.T, configure func(*server.Config)) (attack, *servertest.Env) {
		rec := newRecorder(t)
		env := consoleEnv(t, rec, nil, configure)
		console := env.URL
		if a := env.Server.ConsoleAddr(); a != "" {
			console = "http://" + a
		}
		target := console
		if console == env.URL {
			target = "" // the page's own origin
		}
		rec.mu.Lock()
		rec.page = func() string { return evilPage(target) }
		rec.mu.Unlock()
		ctx := browser(t)
		run(t, ctx, uiLogin(&servertest.Env{T: t, URL: console}, servertest.AdminEmail, servertest.AdminPassword))
		var got attack
		run(t, ctx, chromedp.Navigate(env.URL+"/public/page"),
			chromedp.Poll(`window.attack`, &got, chromedp.WithPollingTimeout(20*time.Second)))
		shot(t, ctx, "console-isolation-"+strings.TrimPrefix(t.Name(), "TestConsoleIsolationInChromium/"))
		t.Logf("%+v", got)
		return got, env
	}
	t.Run("own-origin", func(t *testing.T) {
		got, env := run1(t, func(c *server.Config) { c.ConsoleAddr = "127.0.0.1:0" })
		if !strings.HasPrefix(got.Read, "blocked") || !strings.HasPrefix(got.Frame, "blocked") {
			t.Fatalf("the upstream page read the console: %+v", got)
		}
		if !strings.HasPrefix(got.ReadHere, "status 404") {
			t.Fatalf("the console answered on the API's origin: %q", got.ReadHere)
		}
		r := env.As(env.AdminToken(), "GET", "/v1/users?q=evil", nil)
		servertest.Expect(t, r, 200, "")
		if strings.Contains(string(r.Body), "evil@example.com") {
			t.Fatal("the upstream page's post created a user")
		}
	})
	t.Run("same-origin", func(t *testing.T) {
		got, _ := run1(t, func(c *server.Config) { c.ConsoleSameOrigin = true })
		if !strings.Contains(got.Read, "status 200, holds the CSRF token") {
			t.Fatalf("with the console on the API's origin the script should read it: %+v", got)
		}
	})
}
