package oauth

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authorize"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// DeviceGrantType is the grant type of RFC 8628 §3.4.
const DeviceGrantType = authorize.DeviceGrantType

// DeviceAuthorizationPath is the device authorization endpoint's path and
// DevicePath the page where a person enters the user code (SPEC §10.4).
const (
	DeviceAuthorizationPath = "/oauth/device_authorization"
	DevicePath              = "/device"
)

// DeviceCodeGrant is the device_code grant (RFC 8628 §3.4): device_code
// and client_id, with client authentication by HTTP Basic or the body
// for confidential applications, client_id alone for public ones.
type DeviceCodeGrant struct {
	Service *service.Service
}

var _ Grant = (*DeviceCodeGrant)(nil)

// Token answers a poll; see service.DeviceGrant.
func (g *DeviceCodeGrant) Token(ctx context.Context, req *Request) (*service.Issued, error) {
	if req.ClientID == "" {
		return nil, gatehouse.Errorf(gatehouse.EInvalidClient, "Client authentication is required")
	}
	code := req.Get("device_code")
	if code == "" {
		return nil, gatehouse.Invalid("device_code is required")
	}
	return g.Service.DeviceGrant(ctx, req.ClientID, req.ClientSecret, code, req.Get("resource"))
}

// DeviceAuthorization serves POST /oauth/device_authorization (RFC 8628
// §3.1, §3.2): client_id (and the secret of a confidential application)
// and scope give a device code, a user code and where to enter it.
// verificationURI is the device page's absolute URL.
func DeviceAuthorization(svc *service.Service, verificationURI string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		req, err := ParseRequest(w, r, false)
		if err != nil {
			writeError(w, r, nil, err)
			return
		}
		if req.Bearer {
			writeError(w, r, req, gatehouse.Invalid("The device authorization endpoint accepts only HTTP Basic client authentication"))
			return
		}
		out, err := svc.StartDevice(r.Context(), req.ClientID, req.ClientSecret, req.Get("scope"), req.Get("resource"), verificationURI, req.ClientAddr)
		if err != nil {
			writeError(w, r, req, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	})
}

// Device serves GET /device: it sends the browser to the console's
// device page (consolePath), where the person signs in, enters the user
// code and consents; a user_code in the query (verification_uri_complete)
// goes along.
func Device(consolePath string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		target := consolePath
		if c := r.URL.Query().Get("user_code"); c != "" && len(c) <= 64 {
			target += "?" + url.Values{"user_code": {c}}.Encode()
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	})
}
