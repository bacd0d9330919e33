package admin

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
)

// planFields are the plan form's fields, named as the API names them, so
// that a refusal lands next to its field.
var planFields = []string{"rate_limit.daily", "rate_limit.burst", "rate_limit.burst_window_seconds",
	"quota.limit", "quota.period", "allowed_ips"}

// planView is the Plan section of a credential's or a user's page (SPEC
// §10.5): what is set, with what is left of the quota, and the form that
// changes it.
type planView struct {
	// Action is the UI path the form posts to; "" shows the plan without
	// a form, and Note says why.
	Action, Note string
	CSRF         string
	Form         *form
	// IPs is whether the subject takes an allow-list (credentials do,
	// users do not).
	IPs  bool
	Plan gatehouse.Plan
	// What the form's fields hold before anything is typed.
	Daily, Burst, Window, QuotaLimit, Period, AllowedIPs string
}

// newPlanView shows pl on the page pg, with a form posting to action
// (a UI path; "" for none).
func newPlanView(pg page, pl gatehouse.Plan, ips bool, action string) planView {
	v := planView{Action: action, CSRF: pg.CSRF, Form: pg.Form, IPs: ips, Plan: pl, Period: string(gatehouse.QuotaDay),
		AllowedIPs: strings.Join(pl.AllowedIPs, "\n")}
	if rl := pl.RateLimit; rl != nil {
		v.Daily, v.Burst, v.Window = strconv.Itoa(rl.Daily), strconv.Itoa(rl.Burst), strconv.Itoa(rl.BurstWindowSeconds)
	}
	if q := pl.Quota; q != nil {
		v.QuotaLimit, v.Period = strconv.Itoa(q.Limit), string(q.Period)
	}
	return v
}

// Left is what is left of the quota in its current period; -1 when it
// was not read back.
func (v planView) Left() int {
	if v.Plan.Quota == nil || v.Plan.Quota.Remaining == nil {
		return -1
	}
	return *v.Plan.Quota.Remaining
}

// planPatch reads the plan form: the rate limit, the quota and (ips) the
// allow-list, each set as the form has it, an empty one cleared. The
// values are checked by the service (plan.Apply), not here: this only
// reads the text into numbers and lists.
func planPatch(r *http.Request, ips bool) (plan.Patch, error) {
	f := r.PostForm
	var p plan.Patch
	blank := func(names ...string) bool {
		for _, n := range names {
			if strings.TrimSpace(f.Get(n)) != "" {
				return false
			}
		}
		return true
	}
	rl := []string{"rate_limit.daily", "rate_limit.burst", "rate_limit.burst_window_seconds"}
	p.RateLimit.Set = true
	if !blank(rl...) {
		var n [3]int
		for i, name := range rl {
			v, err := planNumber(r, name, "Enter a whole number; leave all three empty for no rate limit of its own.")
			if err != nil {
				return p, err
			}
			n[i] = v
		}
		p.RateLimit.Value = &gatehouse.RateLimitSettings{Daily: n[0], Burst: n[1], BurstWindowSeconds: n[2]}
	}
	p.Quota.Set = true
	if !blank("quota.limit") {
		n, err := planNumber(r, "quota.limit", "Enter a whole number; leave it empty for no quota.")
		if err != nil {
			return p, err
		}
		p.Quota.Value = &gatehouse.Quota{Limit: n, Period: gatehouse.QuotaPeriod(strings.TrimSpace(f.Get("quota.period")))}
	}
	if ips {
		list := []string{}
		for _, line := range strings.FieldsFunc(f.Get("allowed_ips"), func(r rune) bool { return r == '\n' || r == '\r' || r == ',' }) {
			if s := strings.TrimSpace(line); s != "" {
				list = append(list, s)
			}
		}
		p.AllowedIPs = &list
	}
	return p, nil
}

// planNumber reads a whole number of the plan form. A number too large
// (or small) for an int is read as the largest (smallest) one, so that
// the service refuses it with its range.
func planNumber(r *http.Request, field, hint string) (int, error) {
	s := strings.TrimSpace(r.PostForm.Get(field))
	n, err := strconv.Atoi(s)
	if errors.Is(err, strconv.ErrRange) {
		if strings.HasPrefix(s, "-") {
			return math.MinInt, nil
		}
		return math.MaxInt, nil
	}
	if err != nil {
		return 0, gatehouse.InvalidField(field, hint, "%s must be a whole number", field)
	}
	return n, nil
}

// savePlan reads the plan form of r and saves it with save; a refusal
// shows the page again through show with the message next to its field,
// and nothing is changed.
// what names the subject in the message that says it was saved ("the
// credential CI").
func (u *UI) savePlan(w http.ResponseWriter, r *http.Request, pg page, ips bool, save func(plan.Patch) error,
	show func(pg page, status int) error, back, what string) error {
	patch, err := planPatch(r, ips)
	if err == nil {
		err = save(patch)
	}
	if err != nil {
		return u.refuse(w, r, pg, err, "plan", planFields, show)
	}
	msg := "Saved the plan of " + what + "; it holds from the next request."
	if patch.RateLimit.Value == nil && patch.Quota.Value == nil && (patch.AllowedIPs == nil || len(*patch.AllowedIPs) == 0) {
		msg = "Cleared the plan of " + what + ": only the account's limits apply to it now."
	}
	u.done(w, r, back, msg)
	return nil
}
