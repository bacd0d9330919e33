package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/authorize"
	"github.com/gatehouse/gatehouse/internal/servertest"
)

// More conflicting writes released together (see conflicts_test.go):
// each test here fails when the server answers one of them 5xx, or when
// what they leave breaks a rule.

// decisionShot walks ua (signing in as the member when asked) to the
// device page's decision form for userCode and returns the form's POST,
// answered with decision, as a volley shot, without sending it.
func decisionShot(t *testing.T, ua *userAgent, userCode, decision string) volleyReq {
	t.Helper()
	resp, body := ua.do("GET", "/device?user_code="+url.QueryEscape(userCode), nil)
	for range 10 {
		switch {
		case resp.StatusCode == http.StatusSeeOther:
			resp, body = ua.do("GET", resp.Header.Get("Location"), nil)
		case resp.StatusCode == 200 && strings.Contains(body, `action="/admin/login"`):
			f := formFields(t, body, "/admin/login")
			f.Set("email", appMember)
			f.Set("password", memberPW)
			resp, body = ua.do("POST", "/admin/login", f)
		case resp.StatusCode == 200 && strings.Contains(body, `action="/admin/device/decision"`):
			f := formFields(t, body, "/admin/device/decision")
			f.Set("decision", decision)
			return ua.formShot("/admin/device/decision", f)
		case resp.StatusCode == 200 && strings.Contains(body, `action="/admin/device"`):
			f := formFields(t, body, "/admin/device")
			f.Set("user_code", userCode)
			resp, body = ua.do("POST", "/admin/device", f)
		default:
			t.Fatalf("device page: %d %.400s", resp.StatusCode, body)
		}
	}
	t.Fatal("too many steps")
	return volleyReq{}
}

// pollShot is a device-code poll of the token endpoint as a volley shot.
func pollShot(t *testing.T, env *servertest.Env, app thirdPartyApp, deviceCode string) volleyReq {
	form := url.Values{"grant_type": {authorize.DeviceGrantType}, "client_id": {app.ClientID}, "device_code": {deviceCode}}
	if app.ClientSecret != "" {
		form.Set("client_secret", app.ClientSecret)
	}
	return volleyReq{req: formRequest(t, env.URL+"/oauth/token", form)}
}

// TestConflictDeviceApproveVsPoll attacks the device flow: one user code
// allowed several times at once (from several console sessions of the
// user, each past CheckUserCode while the code was pending) released
// together with the device's polls. The approval that wins commits; a
// poll waiting on the device row then locks it, sees it approved and
// takes the account shared (service.DeviceGrant: device, then account),
// while a losing approval holds the account (grantConsent:
// lockAccountUser) and waits to update the device row
// (store.Tx.DecideDevice): opposite orders, a deadlock on PostgreSQL
// (40P01), answered 503 or 500. Exactly one approval counts and at most
// one poll gets tokens. (This held when written: a losing approval's
// UPDATE ... WHERE status = 'pending' runs after the winner committed,
// sees the code approved and skips the row without waiting for the
// poll's lock.)
func TestConflictDeviceApproveVsPoll(t *testing.T) {
	w := newAppsWorld(t)
	env := w.env
	unlimit(t, env, w.admin)
	const approvals, polls = 6, 6
	uas := make([]*userAgent, approvals)
	for i := range uas {
		uas[i] = newUserAgent(t, env.URL)
	}
	for round := 0; round < 10; round++ {
		conf := deviceConfig(env, w.public, "workspaces:read")
		da, err := conf.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var shots []volleyReq
		for i := 0; i < approvals+polls; i++ {
			if i%2 == 0 && i/2 < approvals {
				s := decisionShot(t, uas[i/2], da.UserCode, "allow")
				s.from = loopback(round*approvals + i/2) // the sign-in throttle counts per address
				shots = append(shots, s)
			} else {
				shots = append(shots, pollShot(t, env, w.public, da.DeviceCode))
			}
		}
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path })
		tokens := 0
		for i, r := range res.resps {
			if strings.HasSuffix(shots[i].req.URL.Path, "/oauth/token") && r.Status == 200 {
				tokens++
			}
		}
		if tokens > 1 {
			t.Errorf("round %d: %d polls got tokens", round, tokens)
		}
		if t.Failed() {
			return
		}
	}
}

// TestConflictWebhookDeleteVsGone attacks DELETE /v1/webhooks/{id}
// released while deliveries to that endpoint are being answered 410 Gone
// (each attempt's outcome disables the endpoint). Recording an attempt
// that disables the endpoint (store.Store.FinishAttempt) now locks the
// endpoint before its delivery, as the deletion (service.changeWebhook,
// store.Tx.DeleteWebhook) does; the opposite order deadlocked on
// PostgreSQL (40P01), answered 503. Each round holds the worker's first
// attempt to a new endpoint (which it makes alone) and releases its 410
// with the two deletions.
func TestConflictWebhookDeleteVsGone(t *testing.T) {
	env := servertest.Start(t, insecureWebhooks)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const inFlight = 1 // the worker makes a new endpoint's first attempt alone
	for round := 0; round < 40; round++ {
		var (
			mu      sync.Mutex
			arrived int
			full    = make(chan struct{})
			gate    = make(chan struct{})
		)
		rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			arrived++
			if arrived == inFlight {
				close(full)
			}
			mu.Unlock()
			<-gate
			w.WriteHeader(http.StatusGone)
		}))
		r := env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": rc.URL + "/hooks", "events": []string{"webhook.test"}})
		servertest.Expect(t, r, 201, "")
		wh := r.Map(t)["id"].(string)
		for i := 0; i < 8; i++ {
			if r := env.As(admin, "POST", "/v1/webhooks/"+wh+"/test", nil); r.Status != 200 && r.Status != 202 {
				t.Fatalf("test event: %d %s", r.Status, r.Body)
			}
		}
		select {
		case <-full:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: only %d deliveries arrived", round, arrived)
		}
		shots := []volleyReq{
			{req: asRequest(t, env, admin, "DELETE", "/v1/webhooks/"+wh, "")},
			{req: asRequest(t, env, admin, "DELETE", "/v1/webhooks/"+wh, "")},
		}
		go func() {
			time.Sleep(time.Duration(round%4) * time.Millisecond)
			close(gate)
		}()
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path })
		rc.Close()
		if t.Failed() {
			return
		}
	}
}
