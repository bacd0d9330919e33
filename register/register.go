// Package register serves dynamic client registration (RFC 7591, SPEC
// §10.4): POST /oauth/register, when --dynamic-registration is set,
// throttled per client address. The rules of what may register are
// service/registration.go's.
package register

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/throttle"
)

// Path is the registration endpoint's path.
const Path = "/oauth/register"

// PerHour is how many registrations one client address may make in an
// hour; the next is too_many_attempts with Retry-After.
const PerHour = 20

// Rules are the throttle rules of registrations: PerHour per address.
func Rules() throttle.Rules {
	r := throttle.Rule{Limit: PerHour, Window: time.Hour}
	return throttle.Rules{UserAddr: r, User: r, Addr: r}
}

// Handler serves POST /oauth/register. Build it with New.
type Handler struct {
	service  *service.Service
	throttle throttle.Throttle
	logger   *slog.Logger
}

// New returns the handler; th counts registrations per client address
// (built with Rules; a cluster passes one shared through Redis).
func New(svc *service.Service, th throttle.Throttle, logger *slog.Logger) *Handler {
	return &Handler{service: svc, throttle: th, logger: logger}
}

// ServeHTTP registers a public client: 201 with its metadata (RFC 7591
// §3.2.1), or 400 invalid_redirect_uri / invalid_client_metadata /
// invalid_request, or 429 too_many_attempts. Answers are never cached.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	addr := httpx.ClientAddr(r)
	if _, err := h.throttle.Reserve(r.Context(), "register\x00"+addr, addr); err != nil {
		if gatehouse.ErrorCode(err) != gatehouse.ETooManyAttempts {
			h.logger.Warn("client registration: the throttle cannot be reached", "err", err)
			err = gatehouse.Errorf(gatehouse.EUnavailable, "The service is unavailable; try again shortly")
		}
		httpx.Error(w, r, err)
		return
	}
	var raw map[string]json.RawMessage
	if err := httpx.DecodeJSON(w, r, &raw, false); err != nil {
		httpx.Error(w, r, err)
		return
	}
	if raw == nil {
		httpx.Error(w, r, gatehouse.Invalid("The body must be a JSON object of client metadata"))
		return
	}
	in, err := service.ParseRegistration(raw)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	out, err := h.service.RegisterClient(r.Context(), in, addr)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, out)
}
