// Package admission decides whether an authenticated request is let in:
// it authenticates the request (auth), runs the caller's own check, checks
// the credential's allowed addresses, charges every budget of the
// principal through a Charger and, in a cluster, confirms that the
// principal still rests on the cluster's current state, validating the
// request again when it does not. It is the one home of that path; the
// API, the gateway, forward auth and the OAuth endpoints take an Admitter.
package admission

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/ratelimit"
)

// Charger counts one request against the budgets keys of account under
// l, admitting it only if every budget has room. With expect set, a
// charger that confirms (a cluster's, Config.Confirms) first checks that
// the account's shard of the cluster state is still *expect, or has moved
// only for subjects other than rests: when it has not, it counts nothing
// and returns confirmed false with the state it found. A charger that
// does not confirm returns confirmed true. Errors are the charger's
// failures; the Admitter answers them with 503.
//
// *cluster.Redis is the cluster's Charger; NewLocal returns a single
// node's.
type Charger interface {
	Admit(ctx context.Context, expect *gatehouse.ClusterState, rests, account string, keys []string, l ratelimit.Limits) (d ratelimit.Decision, st gatehouse.ClusterState, confirmed bool, err error)
}

// CatchUp is how a node follows the cluster state a confirming Charger
// found (the service): Notice when the request was decided, Observe,
// reading the revocation log, when the principal rested on an older state.
type CatchUp interface {
	Notice(ctx context.Context, account string, st gatehouse.ClusterState)
	Observe(ctx context.Context, account string, st gatehouse.ClusterState) error
}

// Quotas is told of every admitted request that counted against a quota,
// with where each of its quota budgets stands (the service: it keeps the
// counts durably, beyond the limiter, and sends quota.threshold).
type Quotas interface {
	ChargeQuotas(ctx context.Context, accountID string, uses []gatehouse.QuotaUse)
}

// Config is what an Admitter needs.
type Config struct {
	// Auth turns a request's credentials into a principal.
	Auth *auth.Authenticator
	// Charger charges every admitted request; nil admits without limits.
	Charger Charger
	// Confirms says that Charger confirms cluster states, so that
	// principals may come from a node's cache without reading the cluster
	// first: CatchUp is then required. The server decides it in one place
	// and gives the same answer to the service.
	Confirms bool
	CatchUp  CatchUp
	// Quotas, when set, is told of every admitted request that counted
	// against a quota.
	Quotas Quotas
	// Headers names the remaining-requests headers.
	Headers ratelimit.HeaderNames
	// Status is the status of a request refused by a budget (429 unless
	// set).
	Status int
	// OnLimited, when set, is called for every request a budget refused.
	OnLimited func()
	// Resource is the resource of Gatehouse's own API (a
	// gatehouse.ResourceKey of its public URL): Admit, AdmitChecked and
	// Require refuse a token bound to any other (RFC 8707).
	Resource string
}

// Admitter admits requests. Construct it with New; it is safe for
// concurrent use.
type Admitter struct {
	auth      *auth.Authenticator
	charger   Charger
	confirms  bool
	catchUp   CatchUp
	quotas    Quotas
	headers   ratelimit.HeaderNames
	status    int
	onLimited func()
	resource  string
}

// New returns an Admitter for cfg.
func New(cfg Config) *Admitter {
	return &Admitter{auth: cfg.Auth, charger: cfg.Charger, confirms: cfg.Confirms, catchUp: cfg.CatchUp, quotas: cfg.Quotas,
		headers: cfg.Headers.Canonical(), status: cfg.Status, onLimited: cfg.OnLimited, resource: cfg.Resource}
}

// Auth returns the authenticator.
func (a *Admitter) Auth() *auth.Authenticator { return a.auth }

// Headers returns the names of the remaining-requests headers, in
// canonical form.
func (a *Admitter) Headers() ratelimit.HeaderNames { return a.headers }

// errStale is charge's answer for a principal validated under a cluster
// state that has changed since: the request is validated again.
var errStale = errors.New("admission: the principal was validated under an earlier cluster state")

// errRelinked is errStale for a principal validated under a state read on
// fewer connections to the cluster than the charger has opened since (a
// reconnection: gatehouse.ClusterState.Link).
var errRelinked = fmt.Errorf("%w, on fewer connections than the cluster has now", errStale)

// maxAttempts bounds how often one request is validated when the cluster
// keeps changing under it; maxRelinks how often more, when what changed
// is only that the charger opened connections (a reconnection opens each
// of a client's few connections again, one at a time). The last attempt
// is charged without confirmation (AdmitFor): the cluster changing under
// a request does not refuse it.
const (
	maxAttempts = 3
	maxRelinks  = 8
)

// Check decides about an authenticated request before it is charged, so
// that a request it refuses costs its principal nothing, like every other
// refusal. It may set headers on w for its refusal.
type Check func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error

// Admit authenticates r and charges it to its principal's budgets, which
// confirms the principal against the cluster: every request authenticated
// by its headers goes through here. When the cluster changed since the
// principal was validated, the request is validated again (a few times
// at most; see AdmitFor).
func (a *Admitter) Admit(w http.ResponseWriter, r *http.Request) (*gatehouse.Principal, error) {
	return a.AdmitChecked(w, r, nil)
}

// AdmitChecked is Admit with check (when not nil) made between
// authentication and charging: a request check refuses is not charged.
// When the cluster turns out to have changed, the request is validated
// and checked again.
func (a *Admitter) AdmitChecked(w http.ResponseWriter, r *http.Request, check Check) (*gatehouse.Principal, error) {
	return a.AdmitFor(w, r, a.resource, check)
}

// AnyResource, given to AdmitFor, takes a token bound to any resource (or
// none): forward auth, which serves whatever its proxy protects.
const AnyResource = "*"

// AdmitFor is AdmitChecked for a request to resource (a
// gatehouse.ResourceKey, "" for none in particular, or AnyResource)
// rather than to Gatehouse's own API: a token bound to another resource
// (RFC 8707) is refused with invalid_token before it is charged. A token
// bound to no resource is taken anywhere.
func (a *Admitter) AdmitFor(w http.ResponseWriter, r *http.Request, resource string, check Check) (*gatehouse.Principal, error) {
	for attempts, relinks := 0, 0; attempts < maxAttempts; attempts++ {
		p, err := a.auth.Authenticate(r)
		if err != nil {
			// A credential recognised but refused is named in the
			// request log and the usage counts, never trusted.
			httpx.RecordPrincipal(r.Context(), gatehouse.RefusedPrincipal(err))
			return nil, err
		}
		httpx.RecordPrincipal(r.Context(), p)
		if p.Resource != "" && p.Resource != resource && resource != AnyResource {
			return nil, errOtherResource()
		}
		// Refused before any budget is charged (SPEC §10.5).
		if err := p.CheckAddr(httpx.ClientAddr(r)); err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(w, r, p); err != nil {
				return nil, err
			}
		}
		// A principal validated again after a stale charge was validated
		// after this node read the revocation log in a read that began
		// after the request did (charge's Observe): it reflects every
		// revocation acknowledged before the request began, and the
		// cluster still changing is revocations made meanwhile, which the
		// request may precede. So the last attempt is charged without
		// confirmation: a burst of changes to one account (each revokes
		// its principals' account subject) delays its requests by a few
		// validations, never refuses them.
		err = a.charge(w, r, p, attempts+1 < maxAttempts)
		if errors.Is(err, errRelinked) && relinks < maxRelinks {
			relinks++
			attempts--
			continue
		}
		if errors.Is(err, errStale) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, &gatehouse.Error{Code: gatehouse.EUnavailable, Message: "The cluster state keeps changing; try again shortly"}
}

// Charge charges a request of p authenticated some other way (a client
// credential on the revocation or introspection endpoint, validated
// against the cluster's current state), writing the rate-limit headers;
// it returns an error when the request is refused.
func (a *Admitter) Charge(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	httpx.RecordPrincipal(r.Context(), p)
	if err := p.CheckAddr(httpx.ClientAddr(r)); err != nil {
		return err
	}
	return a.charge(w, r, p, false)
}

// Require admits every request (Admit) and passes it to next, where
// gatehouse.FromContext returns its principal (recorded on the request's
// httpx.RequestInfo, so Require must run under httpx.Requests; without it
// next sees no principal and fails closed). Requests that fail get the
// JSON error of SPEC §4.
func (a *Admitter) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Admit(w, r)
		if err != nil {
			httpx.Error(w, r, err)
			return
		}
		httpx.Admitted(r.Context(), p)
		next.ServeHTTP(w, r)
	})
}

// errOtherResource is the refusal of a token bound to a resource other
// than the one a request is made to.
func errOtherResource() error {
	return gatehouse.Errorf(gatehouse.EInvalidToken, "The token was issued for another resource")
}

// unavailable is the refusal of a request whose budgets could not be
// read.
func unavailable() error {
	return &gatehouse.Error{Code: gatehouse.EUnavailable, Message: "The rate limiter is unavailable; try again shortly"}
}

// charge counts a request of p against every budget of p (Principal
// Budgets: the user, the API token or credential, or both for an API
// token acting as a user) under its account's and its own limits, admits
// it only if each has room, and writes the headers of the tightest. With
// confirm set, p comes from Authenticate and may rest on this node's last
// view of the cluster (Principal.Basis): a confirming charger then counts
// the request only if the cluster is still in that state, and when it is
// not, nothing is counted, the node catches up and charge returns
// errStale — so a request that the second validation refuses was never
// counted, and a request is always decided under the limits of the
// account as validated.
func (a *Admitter) charge(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal, confirm bool) error {
	if a.charger == nil {
		return nil
	}
	ctx := r.Context()
	lim := ratelimit.ForPrincipal(p, time.Now())
	var expect *gatehouse.ClusterState
	if confirm && a.confirms {
		expect = &p.Basis
	}
	d, st, confirmed, err := a.charger.Admit(ctx, expect, p.Rests, p.AccountID, p.Budgets(), lim)
	if err != nil {
		gatehouse.Logger(ctx).WarnContext(ctx, "rate limiter unavailable", "err", err)
		return unavailable()
	}
	if a.confirms {
		if !confirmed {
			if err := a.catchUp.Observe(ctx, p.AccountID, st); err != nil {
				return err
			}
			if expect != nil && st.Link != expect.Link {
				return errRelinked
			}
			return errStale
		}
		// It rested on what no revocation since touched; the node
		// catches up in passing.
		a.catchUp.Notice(ctx, p.AccountID, st)
	}
	d.SetHeaders(w.Header(), a.headers)
	if d.Allowed && d.Quota.Set && a.quotas != nil {
		// A copy, so that only a request with a quota pays for the
		// slice the call is given.
		charged := d.Quota.Uses
		uses := charged[:]
		for len(uses) > 0 && uses[len(uses)-1].Key == "" {
			uses = uses[:len(uses)-1]
		}
		a.quotas.ChargeQuotas(ctx, p.AccountID, uses)
	}
	if d.Allowed {
		return nil
	}
	if a.onLimited != nil {
		a.onLimited()
	}
	if d.Quota.Exceeded {
		return &gatehouse.Error{Code: gatehouse.EQuotaExceeded, Message: "Quota exceeded", RetryAfter: d.RetryAfter, Status: a.status}
	}
	return &gatehouse.Error{Code: gatehouse.ERateLimitExceeded, Message: "Rate limit exceeded", RetryAfter: d.RetryAfter, Status: a.status}
}
