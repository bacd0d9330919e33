package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"golang.org/x/oauth2"
)

// confusionNo5xx fails the test when r is a server error or not JSON.
func confusionNo5xx(t *testing.T, what string, r *servertest.Response) {
	t.Helper()
	if r.Status >= 500 {
		t.Errorf("%s: %d %s", what, r.Status, r.Body)
	}
	if r.Status >= 400 && !strings.HasPrefix(strings.TrimSpace(string(r.Body)), "{") {
		t.Errorf("%s: %d error not JSON: %q", what, r.Status, r.Body)
	}
}

// confusionRefused fails unless r is a 4xx refusal (409 or 400).
func confusionRefused(t *testing.T, what string, r *servertest.Response) {
	t.Helper()
	confusionNo5xx(t, what, r)
	if r.Status != 409 && r.Status != 400 {
		t.Errorf("%s: %d %s, want 409 or 400", what, r.Status, r.Body)
	}
}

// confusionEmailSpellings are spellings a person (or a case-insensitive
// look-up) would take for base@domain, which must never become a second
// user.
func confusionEmailSpellings(local, domain string) map[string]string {
	up := strings.ToUpper(local)
	k := strings.Replace(local, "k", "\u212a", 1) // KELVIN SIGN
	return map[string]string{
		"upper":               up + "@" + strings.ToUpper(domain),
		"mixed case":          strings.ToUpper(local[:1]) + local[1:] + "@" + domain,
		"spaces around":       "  " + local + "@" + domain + "  ",
		"tab around":          "\t" + local + "@" + domain,
		"nbsp around":         "\u00a0" + local + "@" + domain + "\u00a0",
		"zero-width inside":   local[:1] + "\u200b" + local[1:] + "@" + domain,
		"zero-width joiner":   local + "\u200d@" + domain,
		"bom prefix":          "\ufeff" + local + "@" + domain,
		"soft hyphen":         local + "\u00ad@" + domain,
		"rtl mark":            local + "@" + domain + "\u200f",
		"kelvin sign":         k + "@" + domain,
		"fullwidth first":     string(rune(0xff41+rune(local[0]-'a'))) + local[1:] + "@" + domain,
		"fullwidth at":        local + "\uff20" + domain,
		"ideographic dot":     local + "@" + strings.Replace(domain, ".", "\u3002", 1),
		"fullwidth dot":       local + "@" + strings.Replace(domain, ".", "\uff0e", 1),
		"trailing dot domain": local + "@" + domain + ".",
		"cyrillic a mixed":    strings.Replace(local, "a", "\u0430", 1) + "@" + domain,
		"nul inside":          local + "\x00@" + domain,
		"control inside":      local + "\x07@" + domain,
		"newline":             local + "@" + domain + "\n",
		"display name":        "Kate <" + local + "@" + domain + ">",
		"quoted local":        `"` + local + `"@` + domain,
		"very long":           strings.Repeat("k", 300) + "@" + domain,
	}
}

// TestConfusionEmailUniqueness: with kate@acme.example a user, no
// spelling of that address — case, Unicode case (the Kelvin sign), white
// space of any kind around it, invisible characters, fullwidth forms,
// IDNA full stops, NUL and controls — makes a second user, through
// POST /v1/users or as a new account's admin; each is 409 or 400 JSON,
// never 201 or 5xx (SPEC §1 "unique across the whole server,
// case-insensitive", §10.8 "People are who they seem").
func TestConfusionEmailUniqueness(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "kate@acme.example", memberPW)
	for name, spelling := range confusionEmailSpellings("kate", "acme.example") {
		r := env.As(admin, "POST", "/v1/users", map[string]any{"email": spelling, "name": "x", "password": memberPW, "roles": []string{}})
		confusionRefused(t, "user "+name, r)
		r = env.As(admin, "POST", "/v1/accounts", map[string]any{"name": "acct " + name, "admin_email": spelling, "admin_password": memberPW})
		confusionRefused(t, "account admin "+name, r)
	}
	// Exactly one kate, in the operator's look-up of every spelling
	// that folds to her address.
	for _, q := range []string{"kate@acme.example", "KATE@ACME.EXAMPLE", " kate@acme.example ", "\u212aate@acme.example"} {
		r := env.As(admin, "GET", "/v1/users?all_accounts=true&email="+url.QueryEscape(q), nil)
		servertest.Expect(t, r, 200, "")
		var l struct {
			Data []struct{ Email string } `json:"data"`
		}
		r.JSON(t, &l)
		if len(l.Data) != 1 || l.Data[0].Email != "kate@acme.example" {
			t.Errorf("look-up %q: %s", q, r.Body)
		}
	}
	r := env.As(admin, "GET", "/v1/users?limit=200", nil)
	var all struct {
		Data []struct{ Email string } `json:"data"`
	}
	r.JSON(t, &all)
	n := 0
	for _, u := range all.Data {
		if strings.Contains(strings.ToLower(u.Email), "acme") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d users of acme.example: %s", n, r.Body)
	}
	// Invisible and control characters never find her either.
	for _, q := range []string{"kate\u200b@acme.example", "kate@acme.example\u200f", "kate\x00@acme.example"} {
		r := env.As(admin, "GET", "/v1/users?all_accounts=true&email="+url.QueryEscape(q), nil)
		confusionNo5xx(t, "look-up "+q, r)
		if r.Status == 200 && strings.Contains(string(r.Body), "kate@") {
			t.Errorf("look-up %q found kate: %s", q, r.Body)
		}
	}
}

// TestConfusionEmailRace: one new address in many spellings, sent
// together over connections opened in advance, as users of the account
// and as new accounts' admins: exactly one is created, none is 5xx.
func TestConfusionEmailRace(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	spellings := []string{"twin@race.example", "TWIN@race.example", "Twin@Race.Example", " twin@race.example",
		"twin@RACE.EXAMPLE ", "tWiN@race.example", "\u00a0twin@race.example", "TWIN@RACE.EXAMPLE"}
	var shots []volleyReq
	for i := 0; i < 24; i++ {
		s := spellings[i%len(spellings)]
		if i%3 == 2 {
			shots = append(shots, volleyReq{req: asRequest(t, env, admin, "POST", "/v1/accounts",
				confusionJSON(map[string]any{"name": fmt.Sprint("a", i), "admin_email": s, "admin_password": memberPW}))})
			continue
		}
		shots = append(shots, volleyReq{req: asRequest(t, env, admin, "POST", "/v1/users",
			confusionJSON(map[string]any{"email": s, "name": "twin", "password": memberPW, "roles": []string{}}))})
	}
	res := volley(t, shots)
	created := 0
	for i, r := range res.resps {
		switch {
		case r.Status == 201:
			created++
		case r.Status != 409 && r.Status != 400:
			t.Errorf("shot %d (%q): %d %s", i, spellings[i%len(spellings)], r.Status, r.Body)
		}
	}
	if created != 1 {
		t.Errorf("%d users created for one address", created)
	}
	// Only one sign-in identity: the password grant with any spelling is
	// one user.
	r := env.As(admin, "GET", "/v1/users?all_accounts=true&email=twin@race.example", nil)
	servertest.Expect(t, r, 200, "")
	if n := strings.Count(string(r.Body), `"id":"usr`); n > 1 {
		t.Errorf("look-up: %s", r.Body)
	}
}

func confusionJSON(v map[string]any) string {
	var b strings.Builder
	b.WriteString("{")
	first := true
	for k, x := range v {
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "%q:", k)
		switch y := x.(type) {
		case string:
			b.WriteString(confusionQuote(y))
		case []string:
			b.WriteString("[")
			for i, s := range y {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(confusionQuote(s))
			}
			b.WriteString("]")
		default:
			fmt.Fprint(&b, y)
		}
	}
	b.WriteString("}")
	return b.String()
}

// confusionQuote is a JSON string literal of s (\u escapes for
// everything outside printable ASCII).
func confusionQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r > 0xffff:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestConfusionEmailLookups: every look-up by address — the password
// grant, the act-as header — finds the one user its normal form names and
// nobody for an invisible spelling; the sign-in throttle counts every
// spelling of one address as that address (five failures under five
// spellings block the sixth, right, attempt); an API token acting as the
// operator's address in any spelling has no operator power.
func TestConfusionEmailLookups(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "kate@acme.example", memberPW)
	login := func(user, pw string) *servertest.Response {
		form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}
		return env.Request("POST", "/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	}
	for _, u := range []string{"KATE@ACME.EXAMPLE", " kate@acme.example\u00a0", "\u212aate@acme.example"} {
		r := login(u, memberPW)
		servertest.Expect(t, r, 200, "")
		me := env.As(r.Map(t)["access_token"].(string), "GET", "/v1/me", nil).Map(t)
		if b, _ := me["user"].(map[string]any); b == nil || b["email"] != "kate@acme.example" {
			t.Errorf("%q signed in as %v", u, me["user"])
		}
	}
	for _, u := range []string{"kate\u200b@acme.example", "ｋate@acme.example", "kate@acme\u3002example", "kate\x00@acme.example"} {
		r := login(u, memberPW)
		confusionNo5xx(t, "sign-in "+u, r)
		if r.Status == 200 {
			t.Errorf("%q signed in: %s", u, r.Body)
		}
	}
	// The throttle: five wrong passwords, each under another spelling,
	// then the right one under the plain address: refused.
	env.CreateUser(admin, "lena@acme.example", memberPW)
	for _, u := range []string{"LENA@acme.example", " lena@acme.example", "Lena@ACME.example", "lena@acme.example\u00a0", "lEnA@acme.example"} {
		servertest.Expect(t, login(u, "wrong password 1"), 400, "invalid_grant")
	}
	servertest.Expect(t, login("lena@acme.example", memberPW), 429, "too_many_attempts")

	// The act-as header.
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	r := env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": "act"})
	servertest.Expect(t, r, 201, "")
	tok := r.Map(t)["token"].(string)
	for _, h := range []string{"KATE@acme.example", "\u212aate@acme.example", "\tkate@acme.example "} {
		r := env.Request("GET", "/v1/me", nil, "X-API-Token", tok, "X-User-Email", h)
		confusionNo5xx(t, "act as "+h, r)
		if r.Status == 200 {
			if b, _ := r.Map(t)["user"].(map[string]any); b == nil || b["email"] != "kate@acme.example" {
				t.Errorf("act-as %q: %s", h, r.Body)
			}
		} else if r.Status != 400 && r.Status != 403 {
			t.Errorf("act-as %q: %d %s", h, r.Status, r.Body)
		}
	}
	for _, h := range []string{"kate\u200b@acme.example", "kate@acme.example\u200f", "ｋate@acme.example"} {
		r := env.Request("GET", "/v1/me", nil, "X-API-Token", tok, "X-User-Email", h)
		confusionNo5xx(t, "act as "+h, r)
		if r.Status == 200 {
			t.Errorf("act-as %q served: %s", h, r.Body)
		}
	}
	for _, h := range []string{"ADMIN@example.com", "\u212a" + "x", "admin@EXAMPLE.COM ", " Admin@Example.Com"} {
		r := env.Request("POST", "/v1/accounts", map[string]string{"name": "stolen", "admin_email": "thief@evil.example", "admin_password": memberPW},
			"X-API-Token", tok, "X-User-Email", h)
		confusionNo5xx(t, "operator act-as "+h, r)
		if r.Status == 201 {
			t.Errorf("API token acting as %q created an account", h)
		}
	}
}

// confusionNames sends create requests for the names of one kind and
// returns their statuses.
type confusionNameCase struct {
	first, second string
	same          bool // the second must be refused as the first's name
}

var confusionNameCases = []confusionNameCase{
	{"Zapier", "zapier", true},
	{"Zapier2", "ZAPIER2", true},
	{"Spaced", "  Spaced\u00a0", true},
	{"Ünicorn", "ÜNICORN", true},     // non-ASCII letters: "in any case"
	{"Δέλτα", "ΔΈΛΤΑ", true},         // Greek
	{"\u212aelvin", "kelvin", true},  // KELVIN SIGN lower-cases to k
	{"Straße", "STRASSE", true},      // full case folding
	{"Café", "Cafe\u0301", true},     // NFC vs NFD
	{"Hidden", "Hid\u200bden", true}, // zero-width
	{"Full", "Ｆｕｌｌ", true},           // fullwidth
	{"Dotted", "DOTTED", true},       // ASCII
	{"istanbul", "İSTANBUL", true},   // dotted capital I
	{"title", "T\u0130TLE", true},    // dotted capital I inside
	{"ci deploy", "cideploy", false}, // another name
	{"Tab name", "Tab\tname", false}, // control: must be 400 (checked below)
}

// confusionNames runs the cases against create (POST path) and rename
// (PATCH path/{id}); list is the GET path. It reports the pairs that
// became two live objects although they are one name in any case.
func confusionNames(t *testing.T, env *servertest.Env, tok, path string) {
	t.Helper()
	for _, c := range confusionNameCases {
		r := env.As(tok, "POST", path, map[string]string{"name": c.first})
		servertest.Expect(t, r, 201, "")
		r2 := env.As(tok, "POST", path, map[string]string{"name": c.second})
		confusionNo5xx(t, "second "+c.second, r2)
		if strings.ContainsAny(c.second, "\t\x00") {
			if r2.Status != 400 {
				t.Errorf("%s: name %q: %d %s, want 400", path, c.second, r2.Status, r2.Body)
			}
			continue
		}
		switch {
		case c.same && r2.Status != 409:
			t.Errorf("%s: %q beside %q: %d %s, want 409 (one name in any case)", path, c.second, c.first, r2.Status, r2.Body)
		case !c.same && r2.Status != 201:
			t.Errorf("%s: %q beside %q: %d %s, want 201 (another name)", path, c.second, c.first, r2.Status, r2.Body)
		}
	}
	// Renaming onto a name in another case.
	r := env.As(tok, "POST", path, map[string]string{"name": "Renamed source"})
	servertest.Expect(t, r, 201, "")
	id := r.Map(t)["id"].(string)
	for _, n := range []string{"ZAPIER", "ünicorn", "δέλτα", "KELVIN"} {
		r := env.As(tok, "PATCH", path+"/"+id, map[string]string{"name": n})
		confusionNo5xx(t, "rename "+n, r)
		if r.Status != 409 {
			t.Errorf("%s: rename to %q: %d %s, want 409", path, n, r.Status, r.Body)
		}
	}
	for _, bad := range []string{"a\x00b", strings.Repeat("n", 5000), "line\nbreak", "in\u0085side", "bell\x07"} {
		r := env.As(tok, "POST", path, map[string]string{"name": bad})
		confusionNo5xx(t, "bad name", r)
		if r.Status != 400 {
			t.Errorf("%s: name %q: %d, want 400", path, bad[:min(len(bad), 20)], r.Status)
		}
	}
}

// TestConfusionAPITokenNames: "A name is unique among the account's
// live API tokens, in any case" (docs/api-tokens.md) — also for letters
// outside ASCII, on both stores, and under concurrency.
func TestConfusionAPITokenNames(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	confusionNames(t, env, admin, "/v1/api-tokens")
	confusionNameRace(t, []*servertest.Env{env}, admin, "/v1/api-tokens", []string{"Racer", "RACER", "racer", "rAcEr"})
	confusionNameRace(t, []*servertest.Env{env}, admin, "/v1/api-tokens", []string{"Ärger", "ÄRGER", "ärger", "äRGER"})
}

// TestConfusionCredentialNames: client credential names are unique per
// developer among live ones, in any case (docs/admin-ui.md), also for
// letters outside ASCII, on both stores, and under concurrency.
func TestConfusionCredentialNames(t *testing.T) {
	env := servertest.Start(t)
	_, _, devTok, _ := developer(t, env)
	confusionNames(t, env, devTok, "/v1/credentials")
	confusionNameRace(t, []*servertest.Env{env}, devTok, "/v1/credentials", []string{"Racer", "RACER", "racer", "rAcEr"})
	confusionNameRace(t, []*servertest.Env{env}, devTok, "/v1/credentials", []string{"Ärger", "ÄRGER", "ärger", "äRGER"})
}

// TestConfusionNamesTwoNodes: one name in any case is one credential when
// its spellings are created at once through two nodes on one store.
func TestConfusionNamesTwoNodes(t *testing.T) {
	a, b := twoNodesOn(t, "redis://127.0.0.1:"+startRedis(t, "").port+"/0")
	nodes := []*servertest.Env{a, b}
	admin := a.AdminToken()
	servertest.Expect(t, a.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	confusionNameRace(t, nodes, admin, "/v1/api-tokens", []string{"Ärger", "ÄRGER", "ärger", "äRGER"})
	_, _, devTok, _ := developer(t, a)
	confusionNameRace(t, nodes, devTok, "/v1/credentials", []string{"Δέλτα", "ΔΈΛΤΑ", "δέλτα", "Δε\u0301λτα"})
}

// confusionNameRace creates one name in several cases at once, over
// connections opened in advance, through the nodes in turn: exactly one is
// created.
func confusionNameRace(t *testing.T, nodes []*servertest.Env, tok, path string, spellings []string) {
	t.Helper()
	var shots []volleyReq
	for i := 0; i < 16; i++ {
		shots = append(shots, volleyReq{req: asRequest(t, nodes[i%len(nodes)], tok, "POST", path, confusionJSON(map[string]any{"name": spellings[i%len(spellings)]}))})
	}
	res := volley(t, shots)
	created := 0
	for i, r := range res.resps {
		switch r.Status {
		case 201:
			created++
		case 409:
		default:
			t.Errorf("%s race %d: %d %s", path, i, r.Status, r.Body)
		}
	}
	if created != 1 {
		t.Errorf("%s: %d created for one name in any case (%q)", path, created, spellings)
	}
}

// TestConfusionDuplicateKeys: a JSON body that repeats a key — exactly,
// in another ASCII case, or in a spelling encoding/json folds onto it
// (ſ for s, the Kelvin sign for k), at the top or inside metadata — is
// 400 and changes nothing; so the scopes a reviewer reads first are never
// replaced by a later "ſcopes".
func TestConfusionDuplicateKeys(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	bodies := []string{
		`{"name":"dup1","name":"dup2"}`,
		`{"name":"dup1","NAME":"dup2"}`,
		`{"name":"dup1","scopes":["workspaces:read"],"Scopes":null}`,
		`{"name":"dup1","scopes":["workspaces:read"],"\u017fcopes":null}`,
		`{"name":"dup1","scopes":["workspaces:read"],"ſcopes":null}`,
		`{"name":"dup1","metadata":{"k":"1","K":"2"}}`,
		`{"name":"dup1","metadata":{"k":"1","\u212a":"2"}}`,
		`{"name":"dup1","metadata":{"a":{"x":1,"x":2}}}`,
		`{"name":"dup1","external_id":"a","external_ID":"b"}`,
	}
	for _, b := range bodies {
		r := env.As(admin, "POST", "/v1/api-tokens", b)
		confusionNo5xx(t, b, r)
		if r.Status != 400 {
			t.Errorf("%s: %d %s, want 400", b, r.Status, r.Body)
		}
	}
	r := env.As(admin, "GET", "/v1/api-tokens", nil)
	if strings.Contains(string(r.Body), "dup") {
		t.Errorf("a refused body stored a token: %s", r.Body)
	}
	// Users: a second "email" (in any case) never picks the address.
	for _, b := range []string{
		`{"email":"new1@acme.example","email":"admin@example.com","name":"x","password":"member password 1","roles":[]}`,
		`{"email":"new1@acme.example","Email":"new2@acme.example","name":"x","password":"member password 1","roles":[]}`,
		`{"email":"new1@acme.example","name":"x","password":"member password 1","roles":[],"roles":["admin"]}`,
		`{"email":"new1@acme.example","name":"x","password":"member password 1","roles":[],"ROLES":["admin"]}`,
	} {
		r := env.As(admin, "POST", "/v1/users", b)
		confusionNo5xx(t, b, r)
		if r.Status != 400 {
			t.Errorf("%s: %d %s, want 400", b, r.Status, r.Body)
		}
	}
	// The token endpoints: a parameter twice — in the body, or (on
	// /authorization, which reads the query string too) in the query and
	// in the body, in form or JSON — is invalid_request. (/oauth/token
	// reads no query string.)
	for _, q := range []struct{ path, query, body, ct string }{
		{"/oauth/token", "", "grant_type=password&username=admin@example.com&password=x&username=kate@acme.example", "application/x-www-form-urlencoded"},
		{"/oauth/token", "", `{"grant_type":"password","username":"a@example.com","username":"admin@example.com","password":"x"}`, "application/json"},
		{"/oauth/token", "", `{"grant_type":"password","username":"a@example.com","USERNAME":"admin@example.com","password":"x"}`, "application/json"},
		{"/authorization", "?username=kate@acme.example", "username=admin@example.com&password=x", "application/x-www-form-urlencoded"},
		{"/authorization", "?username=kate@acme.example", `{"username":"admin@example.com","password":"x"}`, "application/json"},
		{"/authorization", "?password=x&username=a@example.com&username=admin@example.com", "", "application/x-www-form-urlencoded"},
		{"/authorization", "?password=x", `{"username":"admin@example.com","password":"y"}`, "application/json"},
	} {
		r := env.Request("POST", q.path+q.query, q.body, "Content-Type", q.ct)
		confusionNo5xx(t, q.body, r)
		if r.Status != 400 || !strings.Contains(string(r.Body), "invalid_request") {
			t.Errorf("%s%s %s: %d %s, want 400 invalid_request", q.path, q.query, q.body, r.Status, r.Body)
		}
	}
}

// TestConfusionRedirectURIs: a redirect URI that a person or a lenient
// parser would take for the registered one — case of scheme or host, a
// trailing dot, a default port, percent-encoding, user information, IP
// spellings of loopback — never matches (an error page, never a
// redirect), and none can be registered in a spelling outside the rules.
func TestConfusionRedirectURIs(t *testing.T) {
	w := newAppsWorld(t)
	env := w.env
	conf := func(id, ru string) url.Values {
		return url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {ru}, "state": {"s"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	}
	for _, ru := range []string{
		"HTTPS://app.example.com/callback", "https://APP.example.com/callback", "https://app.example.com./callback",
		"https://app.example.com:443/callback", "https://app.example.com/c%61llback", "https://app.example.com/callback%00",
		"https://app.example.com/callback%20", "https://app.example.com/callback ", " https://app.example.com/callback",
		"https://app.example.com/callback\u200b", "https://app.example.com/ｃallback", "https://app.example.com/callback?",
		"https://app.example.com//callback", "https://app.example.com/./callback", "https://app.example.com%2Fcallback",
		"https://evil.example@app.example.com/callback", "https://app.example.com@evil.example/callback",
		"https://app.example.com\\@evil.example/callback", "https://app.example.com/callback\\..\\evil",
		"https://app.exаmple.com/callback", "https://xn--app-example.com/callback",
	} {
		resp, body := newUserAgent(t, env.URL).do("GET", "/oauth/authorize?"+conf(w.confidential.ClientID, ru).Encode(), nil)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("redirect_uri %q: %d %q %.200s", ru, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
	// Loopback: any port, everything else exact.
	for _, ru := range []string{
		"http://127.0.0.1:8080/Callback", "http://127.0.0.1:8080/callback/", "http://127.0.0.1:80@evil.example/callback",
		"http://127.0.0.1.evil.example/callback", "http://[::ffff:127.0.0.1]/callback", "http://127.1/callback",
		"http://0x7f000001/callback", "http://2130706433/callback", "http://127.0.0.2/callback", "http://[::1]/callback",
		"http://127.0.0.1:8080/callback/../evil", "http://127.0.0.1:/callback", "http://127.0.0.1:08080x/callback",
		"HTTP://127.0.0.1/callback", "http://127.0.0.1:8080/callback#x", "http://localhost/callback",
		"http://127.0.0.1:8080/callback?x=1", "https://127.0.0.1/callback",
	} {
		resp, body := newUserAgent(t, env.URL).do("GET", "/oauth/authorize?"+conf(w.public.ClientID, ru).Encode(), nil)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("loopback redirect_uri %q: %d %q %.200s", ru, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
	// Registration refuses spellings outside the rules, with JSON 400.
	for _, ru := range []string{
		"https://app.example.com/callback\u00a0", "https://app.exаmple.com/cb", "https://app.example.com/cb\x00",
		"https://u:p@app.example.com/cb", "https://app.example.com\\@evil.example/", "https://app.example.com/c b",
		"https://app.example.com/*", "https:app.example.com/cb", "https:///cb", "http://localhost/cb",
		"http://127.0.0.1.evil.example/cb", "javascript:alert(1)//.x",
		"com.example.app:/cb\u200b", "https://app.example.com/" + strings.Repeat("a", 2100),
	} {
		r := env.As(w.devTok, "POST", "/v1/apps", map[string]any{"name": "x", "type": "public", "redirect_uris": []string{ru}})
		confusionNo5xx(t, "register "+ru, r)
		if r.Status != 400 {
			t.Errorf("register %q: %d %.300s, want 400", ru, r.Status, r.Body)
		}
	}
	// "com.example.app:/path — a private-use scheme of a native
	// application (RFC 8252 §7.1): lower case, with a dot"
	// (docs/third-party-apps.md).
	t.Run("private scheme lower case", func(t *testing.T) {
		for _, ru := range []string{"Com.Example.App:/cb", "COM.EXAMPLE.APP:/cb", "com.Example.app:/cb"} {
			r := env.As(w.devTok, "POST", "/v1/apps", map[string]any{"name": "x", "type": "public", "redirect_uris": []string{ru}})
			confusionNo5xx(t, "register "+ru, r)
			if r.Status != 400 {
				t.Errorf("register %q: %d %.200s, want 400 (private schemes are lower case)", ru, r.Status, r.Body)
			}
		}
	})
	// A client id in another case or with white space is no client.
	for _, id := range []string{strings.ToUpper(w.confidential.ClientID), " " + w.confidential.ClientID, w.confidential.ClientID + "\u200b",
		w.confidential.ClientID + "%00", strings.Replace(w.confidential.ClientID, "gci_", "GCI_", 1)} {
		resp, _ := newUserAgent(t, env.URL).do("GET", "/oauth/authorize?"+conf(id, appRedirect).Encode(), nil)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || resp.Header.Get("Location") != "" {
			t.Errorf("client_id %q: %d %q", id, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// TestConfusionClientIDs: the token endpoint finds a client only by its
// exact id: another case, white space or an invisible character around
// the id of a live credential is invalid_client, never a token.
func TestConfusionClientIDs(t *testing.T) {
	env := servertest.Start(t)
	_, _, _, c := developer(t, env)
	for _, id := range []string{strings.ToUpper(c.ClientID), " " + c.ClientID, c.ClientID + " ", c.ClientID + "\u00a0",
		c.ClientID + "\u200b", "\ufeff" + c.ClientID, strings.Replace(c.ClientID, "gci_", "GCI_", 1), c.ClientID + "\x00"} {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {c.ClientSecret}}
		r := env.Request("POST", "/v1/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		confusionNo5xx(t, "client_id "+id, r)
		if r.Status == 200 {
			t.Errorf("client_id %q issued a token", id)
		}
		// Basic authentication: the same.
		r = env.Request("POST", "/v1/oauth/token", "grant_type=client_credentials", "Content-Type", "application/x-www-form-urlencoded",
			"Authorization", "Basic "+confusionBasic(url.QueryEscape(id), url.QueryEscape(c.ClientSecret)))
		confusionNo5xx(t, "basic "+id, r)
		if r.Status == 200 {
			t.Errorf("basic client_id %q issued a token", id)
		}
	}
	// Secrets: another case or white space is no secret.
	for _, s := range []string{strings.ToUpper(c.ClientSecret), " " + c.ClientSecret, c.ClientSecret + "\n"} {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {s}}
		r := env.Request("POST", "/v1/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		confusionNo5xx(t, "secret", r)
		if r.Status == 200 {
			t.Errorf("secret %q issued a token", s)
		}
	}
}

func confusionBasic(u, p string) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	src := []byte(u + ":" + p)
	var b strings.Builder
	for i := 0; i < len(src); i += 3 {
		var n uint32
		k := min(3, len(src)-i)
		for j := 0; j < 3; j++ {
			n <<= 8
			if j < k {
				n |= uint32(src[i+j])
			}
		}
		for j := 0; j < 4; j++ {
			if j <= k {
				b.WriteByte(enc[(n>>(18-6*j))&63])
			} else {
				b.WriteByte('=')
			}
		}
	}
	return b.String()
}

// TestConfusionScopesRolesIPs: roles, scopes and allowed_ips are taken
// only in their one spelling: "Admin", " admin", a fullwidth or Kelvin
// spelling of a role or scope is 400 (never a role given or a scope held
// under another name), and an allowed_ips entry with leading zeros, a zone
// or white space is 400 JSON.
func TestConfusionScopesRolesIPs(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	for i, role := range []string{"Admin", "ADMIN", " admin", "admin ", "ａdmin", "admin\u200b", "Developer", "developer\x00", "operator", "Operator"} {
		r := env.As(admin, "POST", "/v1/users", confusionJSON(map[string]any{"email": fmt.Sprintf("r%d@acme.example", i), "name": "x",
			"password": memberPW, "roles": []string{role}}))
		confusionNo5xx(t, "role "+role, r)
		if r.Status != 400 {
			t.Errorf("role %q: %d %s, want 400", role, r.Status, r.Body)
		}
	}
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	for _, sc := range []string{"Workspaces:Read", "WORKSPACES:READ", "workspaces:read ", "workspaces：read", "workspaces:reaᏧ", "workspaces:read\u200b", "\u212a:x"} {
		r := env.As(admin, "POST", "/v1/api-tokens", confusionJSON(map[string]any{"name": "s" + sc, "scopes": []string{sc}}))
		confusionNo5xx(t, "scope "+sc, r)
		if r.Status == 201 {
			// A token made with an unknown scope in another case must not
			// hold the built-in one.
			tok := r.Map(t)["token"].(string)
			rr := env.Request("GET", "/v1/workspaces", nil, "X-API-Token", tok)
			if rr.Status == 200 {
				t.Errorf("scope %q held workspaces:read", sc)
			}
		}
	}
	for _, ip := range []string{"127.000.000.001", "0127.0.0.1", "127.0.0.1 ", " 127.0.0.1", "127.0.0.1/08", "fe80::1%eth0",
		"::ffff:127.0.0.1/80", "127.0.0.1\x00", "１２７.0.0.1", "127.1", "0x7f.0.0.1", "127.0.0.1/33"} {
		r := env.As(admin, "POST", "/v1/api-tokens", confusionJSON(map[string]any{"name": "ip " + ip, "allowed_ips": []string{ip}}))
		confusionNo5xx(t, "allowed_ips "+ip, r)
		if r.Status != 400 {
			t.Errorf("allowed_ips %q: %d %s, want 400", ip, r.Status, r.Body)
		}
	}
	// An IPv4-mapped spelling of the client's own address allows it; one
	// of another address does not.
	for _, c := range []struct {
		ip    string
		allow bool
	}{{"::ffff:127.0.0.1", true}, {"::ffff:127.0.0.1/128", true}, {"::ffff:10.0.0.1", false}, {"::ffff:0.0.0.0/96", true}, {"::1", false}} {
		r := env.As(admin, "POST", "/v1/api-tokens", confusionJSON(map[string]any{"name": "ipok " + c.ip, "allowed_ips": []string{c.ip}}))
		confusionNo5xx(t, "allowed_ips "+c.ip, r)
		if r.Status != 201 {
			t.Errorf("allowed_ips %q: %d %s, want 201", c.ip, r.Status, r.Body)
			continue
		}
		tok := r.Map(t)["token"].(string)
		rr := env.Request("GET", "/v1/me", nil, "X-API-Token", tok)
		if (rr.Status == 200) != c.allow {
			t.Errorf("allowed_ips %q from 127.0.0.1: %d %s", c.ip, rr.Status, rr.Body)
		}
	}
	// external_id and metadata keys: NUL, controls and huge values are 400.
	for _, body := range []string{
		`{"name":"e1","external_id":"a\u0000b"}`, `{"name":"e2","external_id":"` + strings.Repeat("x", 129) + `"}`,
		`{"name":"e3","metadata":{"a\u0000":"1"}}`, `{"name":"e4","metadata":{"` + strings.Repeat("k", 5000) + `":"1"}}`,
	} {
		r := env.As(admin, "POST", "/v1/api-tokens", body)
		confusionNo5xx(t, body[:20], r)
		if r.Status != 400 {
			t.Errorf("%.60s: %d %s, want 400", body, r.Status, r.Body)
		}
	}
}
