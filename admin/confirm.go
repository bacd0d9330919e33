package admin

import (
	"net/http"
	"net/url"
)

// Every destructive action is a link to a confirmation page, or a form
// whose answer is one, that says what will stop working; only the form on
// that page makes the change. No script is involved, so the CSP stays
// strict.

// confirmation is the page that asks before a destructive action.
type confirmation struct {
	page
	// Question is the page's heading: "Revoke the API token Zapier?".
	Question string
	// Stops lists what stops working, one sentence each.
	Stops []string
	// Keeps lists what keeps working, one sentence each.
	Keeps []string
	// Action is the UI path the form posts to; Hidden its other fields.
	Action string
	Hidden url.Values
	// Buttons are the form's submit buttons; the first is the main one.
	Buttons []button
	// Cancel is the UI path back, without changing anything.
	Cancel string
}

// button is a submit button: label, an optional name and value it sends,
// and whether it destroys.
type button struct {
	Label, Name, Value string
	Danger             bool
}

// confirmed is the hidden field a confirmation page's form adds.
const confirmed = "confirmed"

// confirm renders a confirmation page.
func (u *UI) confirm(w http.ResponseWriter, pg page, c confirmation) {
	pg.Title = c.Question
	c.page = pg
	if c.Hidden == nil {
		c.Hidden = url.Values{}
	}
	c.Hidden.Set(confirmed, "yes")
	u.render(w, http.StatusOK, "confirm", c)
}

// isConfirmed reports whether a post comes from a confirmation page.
func isConfirmed(r *http.Request) bool { return r.PostForm.Get(confirmed) == "yes" }
