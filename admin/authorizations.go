package admin

import (
	"net/http"
)

// Authorised applications: a user ends their own on Your account, an admin
// a user's on the user's page; both ask first (SPEC §10.3).

// authorizationPaths returns the page a revocation of the path's
// authorization returns to and the user it is of ("" for the caller).
func authorizationPaths(r *http.Request) (back, userID string) {
	if id := r.PathValue("id"); id != "" {
		return "/admin/users/" + id, id
	}
	return "/admin/me", ""
}

// confirmRevokeAuthorization asks before revoking an authorization.
func (u *UI) confirmRevokeAuthorization(w http.ResponseWriter, r *http.Request, pg page) error {
	back, userID := authorizationPaths(r)
	g, err := u.svc.Authorization(r.Context(), pg.P, userID, r.PathValue("client_id"))
	if err != nil {
		return err
	}
	u.confirm(w, pg, confirmation{
		Question: "Revoke " + g.Name + "?",
		Stops: []string{
			"The application " + g.Name + " (client id " + g.ClientID + ") can no longer act for " + subjectOf(userID) + ": every token it holds stops working at once, on every node.",
			"To use it again, " + subjectOf(userID) + " must authorise it again.",
		},
		Action:  r.URL.Path,
		Cancel:  back,
		Buttons: []button{{Label: "Revoke " + g.Name, Danger: true}},
	})
	return nil
}

func subjectOf(userID string) string {
	if userID == "" {
		return "you"
	}
	return "this user"
}

// revokeAuthorization revokes it, after the confirmation.
func (u *UI) revokeAuthorization(w http.ResponseWriter, r *http.Request, pg page) error {
	if !isConfirmed(r) {
		return u.confirmRevokeAuthorization(w, r, pg)
	}
	back, userID := authorizationPaths(r)
	if err := u.svc.RevokeAuthorization(r.Context(), pg.P, userID, r.PathValue("client_id")); err != nil {
		return err
	}
	u.done(w, r, back, "The application no longer acts for "+subjectOf(userID)+".")
	return nil
}
