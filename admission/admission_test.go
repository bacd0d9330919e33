package admission_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/admission"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/ratelimit"
)

// tokens is a validator over a fixed table of bearer tokens, counting
// how often it was asked.
type tokens struct {
	principals map[string]gatehouse.Principal
	asked      atomic.Int64
}

func (v *tokens) AccessPrincipal(_ context.Context, raw string) (*gatehouse.Principal, error) {
	v.asked.Add(1)
	p, ok := v.principals[raw]
	if !ok {
		return nil, gatehouse.Errorf(gatehouse.EInvalidToken, "The access token is invalid")
	}
	return &p, nil
}

// fixture is a user "u" of account "a" with a burst of burst requests,
// whose bearer token is "t"; "ip" is the same user's token usable only
// from 192.0.2.0/24.
func fixture(burst int) *tokens {
	acct := &gatehouse.Account{ID: "a", Settings: gatehouse.Settings{RateLimit: gatehouse.RateLimitSettings{Daily: 1000, Burst: burst, BurstWindowSeconds: 60}}}
	user := &gatehouse.User{ID: "u", AccountID: "a"}
	p := gatehouse.Principal{Account: acct, AccountID: "a", User: user, Method: gatehouse.MethodPassword, CredentialID: "t"}
	only, err := gatehouse.ParseAllowList([]string{"192.0.2.0/24"})
	if err != nil {
		panic(err)
	}
	ip := p
	ip.AllowedIPs = only
	return &tokens{principals: map[string]gatehouse.Principal{"t": p, "ip": ip}}
}

func request(token string) *http.Request {
	r := httptest.NewRequest("GET", "/v1/me", nil)
	r.RemoteAddr = "203.0.113.9:4000"
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func code(err error) string {
	var e *gatehouse.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// together runs f in n goroutines released at once, and waits for them.
func together(n int, f func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			f()
		})
	}
	close(start)
	wg.Wait()
}

func local(t *testing.T, v *tokens, quotas admission.Quotas) (*admission.Admitter, *int64) {
	t.Helper()
	mem := ratelimit.NewMemory()
	t.Cleanup(func() { mem.Close() })
	var limited int64
	return admission.New(admission.Config{
		Auth: auth.New(auth.Config{Tokens: v}), Charger: admission.NewLocal(mem, nil), Quotas: quotas,
		Headers:   ratelimit.DefaultHeaderNames(),
		OnLimited: func() { atomic.AddInt64(&limited, 1) },
	}), &limited
}

// A budget admits exactly its burst of requests released together; the
// rest are refused with rate_limit_exceeded, counted as limited, with
// the headers of the budget.
func TestLocalAdmitsExactlyTheBurst(t *testing.T) {
	const burst, n = 5, 40
	a, limited := local(t, fixture(burst), nil)
	var admitted atomic.Int64
	together(n, func() {
		w := httptest.NewRecorder()
		if _, err := a.Admit(w, request("t")); err == nil {
			admitted.Add(1)
		} else if c := code(err); c != gatehouse.ERateLimitExceeded {
			t.Errorf("refused with %q, want %s", c, gatehouse.ERateLimitExceeded)
		} else if w.Header().Get("X-RateLimit-Burst-Remaining") != "0" {
			t.Errorf("refusal's burst remaining %q", w.Header().Get("X-RateLimit-Burst-Remaining"))
		}
	})
	if admitted.Load() != burst || *limited != n-burst {
		t.Fatalf("admitted %d, limited %d; want %d and %d", admitted.Load(), *limited, burst, n-burst)
	}
}

// A request refused by the caller's check, by its credential's allowed
// addresses or by authentication costs its principal nothing.
func TestRefusalsAreNotCharged(t *testing.T) {
	a, _ := local(t, fixture(2), nil)
	refuse := errors.New("refused by the check")
	for range 10 {
		if _, err := a.AdmitChecked(httptest.NewRecorder(), request("t"), func(http.ResponseWriter, *http.Request, *gatehouse.Principal) error { return refuse }); !errors.Is(err, refuse) {
			t.Fatalf("check's refusal: %v", err)
		}
		if _, err := a.Admit(httptest.NewRecorder(), request("ip")); code(err) != gatehouse.EIPNotAllowed {
			t.Fatalf("from another address: %v", err)
		}
		if _, err := a.Admit(httptest.NewRecorder(), request("nope")); code(err) != gatehouse.EInvalidToken {
			t.Fatalf("unknown token: %v", err)
		}
	}
	for i := range 2 {
		if _, err := a.Admit(httptest.NewRecorder(), request("t")); err != nil {
			t.Fatalf("request %d after refusals: %v", i, err)
		}
	}
	if _, err := a.Admit(httptest.NewRecorder(), request("t")); code(err) != gatehouse.ERateLimitExceeded {
		t.Fatalf("third request: %v", err)
	}
}

// cluster is a confirming charger whose state moves under the first
// stale requests: it refuses to confirm that many times, then admits.
type cluster struct {
	stale    atomic.Int64
	relinked atomic.Int64 // stale ones, each on a connection opened anew
	links    atomic.Uint64
	expected atomic.Int64 // requests that came with a state to confirm
	fail     error
}

func (c *cluster) Admit(_ context.Context, expect *gatehouse.ClusterState, _, _ string, _ []string, l ratelimit.Limits) (ratelimit.Decision, gatehouse.ClusterState, bool, error) {
	if c.fail != nil {
		return ratelimit.Decision{}, gatehouse.ClusterState{}, false, c.fail
	}
	now := gatehouse.ClusterState{Epoch: "e", N: 7}
	if expect != nil {
		c.expected.Add(1)
		if c.relinked.Add(-1) >= 0 {
			return ratelimit.Decision{}, gatehouse.ClusterState{Epoch: "e", N: 7, Link: c.links.Add(1)}, false, nil
		}
		if c.stale.Add(-1) >= 0 {
			return ratelimit.Decision{}, now, false, nil
		}
	}
	return ratelimit.Decision{Allowed: true, Limits: l}, now, true, nil
}

// catchUp records what the admitter told the node.
type catchUp struct {
	observed, noticed atomic.Int64
	fail              error
}

func (c *catchUp) Notice(context.Context, string, gatehouse.ClusterState) { c.noticed.Add(1) }
func (c *catchUp) Observe(context.Context, string, gatehouse.ClusterState) error {
	c.observed.Add(1)
	return c.fail
}

func confirming(v *tokens, c *cluster, up *catchUp) *admission.Admitter {
	return admission.New(admission.Config{Auth: auth.New(auth.Config{Tokens: v}), Charger: c, Confirms: true, CatchUp: up})
}

// A principal found stale is validated again after the node caught up,
// and admitted once the cluster confirms it; one that stays stale is
// admitted at its third validation, which follows the node's catching up
// and is charged without a state to confirm; a failed catch-up is the
// request's answer.
func TestStalePrincipalsAreValidatedAgain(t *testing.T) {
	v := fixture(100)
	c, up := &cluster{}, &catchUp{}
	c.stale.Store(2)
	if _, err := confirming(v, c, up).Admit(httptest.NewRecorder(), request("t")); err != nil {
		t.Fatalf("after two stale states: %v", err)
	}
	if v.asked.Load() != 3 || up.observed.Load() != 2 || up.noticed.Load() != 1 {
		t.Fatalf("validated %d times, observed %d, noticed %d; want 3, 2, 1", v.asked.Load(), up.observed.Load(), up.noticed.Load())
	}

	v, c, up = fixture(100), &cluster{}, &catchUp{}
	c.stale.Store(1000)
	if _, err := confirming(v, c, up).Admit(httptest.NewRecorder(), request("t")); err != nil {
		t.Fatalf("always stale: %v", err)
	}
	if v.asked.Load() != 3 || up.observed.Load() != 2 || c.expected.Load() != 2 {
		t.Fatalf("validated %d times, observed %d, charged with a state %d times; want 3, 2, 2", v.asked.Load(), up.observed.Load(), c.expected.Load())
	}

	c, up = &cluster{}, &catchUp{fail: &gatehouse.Error{Code: gatehouse.EUnavailable, Message: "log unreadable"}}
	c.stale.Store(1)
	if _, err := confirming(fixture(100), c, up).Admit(httptest.NewRecorder(), request("t")); code(err) != gatehouse.EUnavailable {
		t.Fatalf("catch-up failed: %v", err)
	}
}

// A principal found stale only because the charger opened connections
// since its state was read (a reconnection) is validated again more often
// than the cluster's changes allow — a reconnection opens each of a few
// connections in turn — but not without bound: then, caught up, it is
// charged without a state to confirm.
func TestRelinkedPrincipalsAreValidatedAgain(t *testing.T) {
	v, c, up := fixture(100), &cluster{}, &catchUp{}
	c.relinked.Store(5)
	c.stale.Store(2)
	if _, err := confirming(v, c, up).Admit(httptest.NewRecorder(), request("t")); err != nil {
		t.Fatalf("after five new connections and two stale states: %v", err)
	}
	if v.asked.Load() != 8 || up.observed.Load() != 7 {
		t.Fatalf("validated %d times, observed %d; want 8, 7", v.asked.Load(), up.observed.Load())
	}
	v, c = fixture(100), &cluster{}
	c.relinked.Store(1000)
	if _, err := confirming(v, c, up).Admit(httptest.NewRecorder(), request("t")); err != nil {
		t.Fatalf("always relinked: %v", err)
	}
	if v.asked.Load() != 11 || c.expected.Load() != 10 {
		t.Fatalf("validated %d times, charged with a state %d times; want 11, 10", v.asked.Load(), c.expected.Load())
	}
}

// A principal authenticated some other way (Charge: a client credential,
// read under the cluster's current state) is charged without a state to
// confirm; a charger that fails refuses with 503.
func TestChargeConfirmsNothingAndFailsClosed(t *testing.T) {
	c, up := &cluster{}, &catchUp{}
	a := confirming(fixture(100), c, up)
	p, _ := fixture(100).AccessPrincipal(context.Background(), "t")
	if err := a.Charge(httptest.NewRecorder(), request("t"), p); err != nil {
		t.Fatal(err)
	}
	if c.expected.Load() != 0 || up.noticed.Load() != 1 {
		t.Fatalf("asked to confirm %d, noticed %d; want 0 and 1", c.expected.Load(), up.noticed.Load())
	}
	c.fail = errors.New("redis: i/o timeout")
	if err := a.Charge(httptest.NewRecorder(), request("t"), p); code(err) != gatehouse.EUnavailable {
		t.Fatalf("charger down: %v", err)
	}
	if _, err := a.Admit(httptest.NewRecorder(), request("t")); code(err) != gatehouse.EUnavailable {
		t.Fatalf("charger down: %v", err)
	}
}

// kept is a store that kept n requests of every quota's period.
type kept int

func (n kept) QuotaBase(context.Context, string, string) (int, error) { return int(n), nil }

// A single node counts a quota on from what its store kept, for requests
// released together, without touching the budgets the cached principal
// shares with every request.
func TestLocalQuotaCountsOnFromTheStore(t *testing.T) {
	const limit, before, n = 10, 7, 20
	v := fixture(1000)
	p := v.principals["t"]
	p.PlanBudgets = []gatehouse.PlanBudget{{Key: "quota:crd_t", Quota: &gatehouse.Quota{Limit: limit, Period: gatehouse.QuotaMonth}}}
	v.principals["t"] = *p.Seal()
	mem := ratelimit.NewMemory()
	t.Cleanup(func() { mem.Close() })
	a := admission.New(admission.Config{Auth: auth.New(auth.Config{Tokens: v}), Charger: admission.NewLocal(mem, kept(before)), Headers: ratelimit.DefaultHeaderNames()})
	var admitted atomic.Int64
	together(n, func() {
		if _, err := a.Admit(httptest.NewRecorder(), request("t")); err == nil {
			admitted.Add(1)
		} else if c := code(err); c != gatehouse.EQuotaExceeded {
			t.Errorf("refused with %q, want %s", c, gatehouse.EQuotaExceeded)
		}
	})
	if admitted.Load() != limit-before {
		t.Errorf("admitted %d, want %d", admitted.Load(), limit-before)
	}
	shared := v.principals["t"]
	if b := *shared.PeriodBudgets(time.Now()); b[0].QuotaCharged != 0 {
		t.Errorf("the shared budget was changed: charged %d", b[0].QuotaCharged)
	}
}
