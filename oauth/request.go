package oauth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
)

// Request is a parsed token-endpoint request.
type Request struct {
	// Params holds every parameter once, from the body (JSON or form) and,
	// where allowed, the query string.
	Params map[string]string
	// ClientID and ClientSecret come from HTTP Basic or the body.
	ClientID, ClientSecret string
	// Basic reports whether the client authenticated with HTTP Basic;
	// Bearer whether the request carries a bearer token instead (and then
	// no client credentials: ParseRequest refuses both).
	Basic, Bearer bool
	// ClientAddr is the caller's address (httpx.ClientAddr), for the
	// sign-in throttle.
	ClientAddr string
}

// Get returns a parameter, or "".
func (r *Request) Get(name string) string { return r.Params[name] }

// ParseRequest reads a token request: a JSON object of strings or a form
// body, plus the query string when allowQuery is set (SPEC §3.4's
// /authorization). A parameter sent twice, anywhere, and client
// credentials both in Basic and in the body, or in the body with a bearer
// token, are invalid_request (RFC 6749 §3.2, §2.3: one authentication
// method per request).
func ParseRequest(w http.ResponseWriter, r *http.Request, allowQuery bool) (*Request, error) {
	req := &Request{Params: map[string]string{}, ClientAddr: httpx.ClientAddr(r)}
	add := func(k, v string) error {
		if _, dup := req.Params[k]; dup {
			return gatehouse.Invalid("Parameter %q is repeated", k)
		}
		if err := httpx.CheckText("parameter "+k, k+v); err != nil {
			return err
		}
		req.Params[k] = v
		return nil
	}
	if allowQuery {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, gatehouse.Invalid("Malformed query string")
		}
		if err := addValues(q, add); err != nil {
			return nil, err
		}
	}
	if httpx.IsJSON(r) {
		var body map[string]json.RawMessage
		// DecodeJSON has refused repeated keys already.
		if err := readJSONObject(w, r, &body); err != nil {
			return nil, err
		}
		for k, v := range body {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, gatehouse.Invalid("Parameter %q must be a string", k)
			}
			if err := add(k, s); err != nil {
				return nil, err
			}
		}
	} else {
		if err := httpx.ParseForm(w, r); err != nil {
			return nil, err
		}
		if err := addValues(r.PostForm, add); err != nil {
			return nil, err
		}
	}
	if err := req.clientAuth(r); err != nil {
		return nil, err
	}
	return req, nil
}

func addValues(vs url.Values, add func(k, v string) error) error {
	for k, list := range vs {
		if len(list) > 1 {
			return gatehouse.Invalid("Parameter %q is repeated", k)
		}
		if err := add(k, list[0]); err != nil {
			return err
		}
	}
	return nil
}

// readJSONObject reads a JSON object body; an empty body is an empty
// object (the parameters may all be in the query string).
func readJSONObject(w http.ResponseWriter, r *http.Request, dst *map[string]json.RawMessage) error {
	var raw json.RawMessage
	if err := httpx.DecodeJSON(w, r, &raw, true); err != nil {
		return err
	}
	if raw == nil {
		raw = json.RawMessage("{}")
	}
	if err := json.Unmarshal(raw, dst); err != nil || *dst == nil {
		return gatehouse.Invalid("The JSON body must be an object")
	}
	return nil
}

// clientAuth reads client credentials from HTTP Basic or the body.
func (req *Request) clientAuth(r *http.Request) error {
	authz := r.Header.Values("Authorization")
	if len(authz) > 1 {
		return gatehouse.Invalid("The Authorization header must be sent once")
	}
	bodyID, bodySecret := req.Params["client_id"], req.Params["client_secret"]
	if len(authz) == 0 {
		req.ClientID, req.ClientSecret = bodyID, bodySecret
		return nil
	}
	scheme, rest, _ := strings.Cut(authz[0], " ")
	if strings.EqualFold(scheme, "Bearer") {
		// Revocation and introspection callers may use a bearer token; the
		// token endpoint refuses it. A bearer token is one way to
		// authenticate, client credentials in the body another: never both
		// (RFC 6749 §2.3), or one of them would go unchecked.
		if bodyID != "" || bodySecret != "" {
			return gatehouse.Invalid("Authenticate once: with a bearer token or with client credentials in the body, not both")
		}
		req.Bearer = true
		return nil
	}
	if !strings.EqualFold(scheme, "Basic") {
		return gatehouse.Invalid("Only HTTP Basic client authentication is accepted")
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return gatehouse.Invalid("Malformed HTTP Basic credentials")
	}
	id, secret, ok := strings.Cut(string(dec), ":")
	if !ok {
		return gatehouse.Invalid("Malformed HTTP Basic credentials")
	}
	// RFC 6749 §2.3.1: Basic values are form-encoded.
	if id, err = url.QueryUnescape(id); err != nil {
		return gatehouse.Invalid("Malformed HTTP Basic credentials")
	}
	if secret, err = url.QueryUnescape(secret); err != nil {
		return gatehouse.Invalid("Malformed HTTP Basic credentials")
	}
	if err := httpx.CheckText("client credentials", id+secret); err != nil {
		return err
	}
	if id == "" && secret == "" {
		// An empty pair (what golang.org/x/oauth2 sends for a public
		// client) counts as no client: the body's fields are the client.
		req.ClientID, req.ClientSecret = bodyID, bodySecret
		return nil
	}
	if bodySecret != "" || (bodyID != "" && bodyID != id) {
		return gatehouse.Invalid("Send client credentials once: in HTTP Basic or in the body, not both")
	}
	req.ClientID, req.ClientSecret, req.Basic = id, secret, true
	return nil
}
