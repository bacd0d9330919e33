package admin

import (
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse/plan"
	"github.com/gatehouse/gatehouse/service"
)

func (u *UI) apiAccess(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.apiAccessPage(w, r, pg, http.StatusOK)
}

func (u *UI) apiAccessPage(w http.ResponseWriter, r *http.Request, pg page, status int) error {
	st, err := u.svc.APIAccessStatus(r.Context(), pg.P)
	if err != nil {
		return err
	}
	// Reuse detection is news while no token of the application works.
	reuse := st.ReuseDetected != nil && st.LiveTokens == 0
	pg.Title, pg.Page = "API access", "api-access"
	var pv planView
	if st.App != nil {
		pv = newPlanView(pg, st.App.Plan, true, "/admin/api-access/plan")
	}
	u.render(w, status, "apiaccess", struct {
		page
		*service.APIAccessState
		Reuse bool
		Min   int
		Max   int
		Plan  planView
	}{pg, st, reuse, service.MinAPIAccessTTLDays, service.MaxAPIAccessTTLDays, pv})
	return nil
}

// showIssued reveals a new pair of API access tokens once.
func (u *UI) showIssued(w http.ResponseWriter, r *http.Request, pg page, heading string, issued *service.APIAccessIssued) error {
	return u.reveal(w, r, pg, shown{
		Heading: heading,
		Warning: "Keep these tokens safe. They are shown only this once; Gatehouse stores only a hash and cannot show them again.",
		Values: []secret{
			{Label: "Client id", ID: "client-id", Value: issued.ClientID},
			{Label: "Access token", ID: "access-token", Value: issued.AccessToken, Secret: true},
			{Label: "Refresh token", ID: "refresh-token", Value: issued.RefreshToken, Secret: true},
		},
		Notes: []string{fmt.Sprintf("The access token works for %d seconds; refresh it with the refresh token and the client id at POST /oauth/token.", issued.ExpiresIn),
			"Each refresh token works once. Presenting a used one again revokes every token of the application (reuse detection)."},
		Back:   "/admin/api-access",
		BackTo: "Back to API access",
	})
}

func (u *UI) enableAPIAccess(w http.ResponseWriter, r *http.Request, pg page) error {
	refused := func(err error) error {
		return u.refuse(w, r, pg, err, "enable", []string{"access_token_ttl_days"}, func(pg page, status int) error {
			return u.apiAccessPage(w, r, pg, status)
		})
	}
	n, err := number(r, "access_token_ttl_days")
	if err != nil {
		return refused(err)
	}
	issued, err := u.svc.EnableAPIAccess(r.Context(), pg.P, service.APIAccessInput{AccessTokenTTLDays: &n})
	if err != nil {
		return refused(err)
	}
	return u.showIssued(w, r, pg, "API access enabled", issued)
}

func (u *UI) reissueAPIAccess(w http.ResponseWriter, r *http.Request, pg page) error {
	issued, err := u.svc.ReissueAPIAccess(r.Context(), pg.P)
	if err != nil {
		return err
	}
	return u.showIssued(w, r, pg, "New API access tokens", issued)
}

func (u *UI) apiAccessLifetime(w http.ResponseWriter, r *http.Request, pg page) error {
	refused := func(err error) error {
		return u.refuse(w, r, pg, err, "lifetime", []string{"access_token_ttl_days"}, func(pg page, status int) error {
			return u.apiAccessPage(w, r, pg, status)
		})
	}
	n, err := number(r, "access_token_ttl_days")
	if err != nil {
		return refused(err)
	}
	if _, err := u.svc.UpdateAPIAccess(r.Context(), pg.P, &n, plan.Patch{}); err != nil {
		return refused(err)
	}
	u.done(w, r, "/admin/api-access", fmt.Sprintf("New access tokens will last %s.", plural(n, "day", "days")))
	return nil
}

// confirmRevokeAPIAccess says what revoking API access stops.
func (u *UI) confirmRevokeAPIAccess(w http.ResponseWriter, r *http.Request, pg page) error {
	st, err := u.svc.APIAccessStatus(r.Context(), pg.P)
	if err != nil {
		return err
	}
	if st.App == nil {
		u.redirect(w, r, "/admin/api-access")
		return nil
	}
	u.confirm(w, pg, confirmation{
		Question: "Revoke API access?",
		Stops: []string{
			fmt.Sprintf("The application with client id %s is deleted.", st.App.ClientID),
			fmt.Sprintf("Its %s working at once, on every node.", agree(st.LiveTokens, "live token", "live tokens", "stops", "stop")),
			"Every integration that uses its access or refresh tokens stops working; enabling API access again gives new tokens, never these.",
		},
		Action:  "/admin/api-access/revoke",
		Buttons: []button{{Label: "Revoke API Access", Danger: true}},
		Cancel:  "/admin/api-access",
	})
	return nil
}

func (u *UI) revokeAPIAccess(w http.ResponseWriter, r *http.Request, pg page) error {
	if !isConfirmed(r) {
		return u.confirmRevokeAPIAccess(w, r, pg)
	}
	if err := u.svc.RevokeAPIAccess(r.Context(), pg.P); err != nil {
		return err
	}
	u.done(w, r, "/admin/api-access", "API access revoked; its tokens no longer work.")
	return nil
}

// apiAccessPlan sets or clears the plan of the admin's own API access
// application.
func (u *UI) apiAccessPlan(w http.ResponseWriter, r *http.Request, pg page) error {
	return u.savePlan(w, r, pg, true, func(p plan.Patch) error {
		_, err := u.svc.UpdateAPIAccess(r.Context(), pg.P, nil, p)
		return err
	}, func(pg page, status int) error {
		return u.apiAccessPage(w, r, pg, status)
	}, "/admin/api-access", "your API access application")
}
