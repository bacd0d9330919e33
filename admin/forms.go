package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
)

// form is a submitted form that was refused, shown again: what was typed
// (never a password) and the one message, next to its field or, when it
// is about no field of the form, above it.
type form struct {
	name   string
	values url.Values
	field  string
	msg    string
}

// passwordFields are the fields that hold a password: never typed back
// into a page.
var passwordFields = []string{"password", "current_password", "new_password", "repeat_password"}

// refusable reports whether err refuses a form's input (and the form
// should be shown again), rather than the request.
func refusable(err error) bool {
	switch gatehouse.ErrorCode(err) {
	case gatehouse.EInvalidRequest, gatehouse.EConflict, gatehouse.EExtensionDisabled, gatehouse.ETooManyAttempts:
		return true
	}
	return false
}

// newForm returns the refused form name of r with the message of err,
// placed next to its field when the error names one of fields.
func newForm(r *http.Request, name string, err error, fields ...string) *form {
	f := &form{name: name, values: url.Values{}, msg: gatehouse.ErrorMessage(err)}
	for k, v := range r.PostForm {
		if k != "csrf" && !slices.Contains(passwordFields, k) {
			f.values[k] = v
		}
	}
	if field, hint := gatehouse.ErrorField(err); field != "" && slices.Contains(fields, field) {
		f.field, f.msg = field, hint
	}
	return f
}

// refuse shows a refused form again with the answer's status, through
// show; any other error is returned to be shown as an error page.
func (u *UI) refuse(w http.ResponseWriter, r *http.Request, pg page, err error, name string, fields []string,
	show func(pg page, status int) error) error {
	if !refusable(err) {
		return err
	}
	var ge *gatehouse.Error
	if errors.As(err, &ge) && ge.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(gatehouse.RetryAfterSeconds(ge.RetryAfter)))
	}
	pg.Form = newForm(r, name, err, fields...)
	return show(pg, httpx.Status(gatehouse.ErrorCode(err)))
}

// formValue is the template function val: the value typed into field of
// the refused form name, or def when that form was not refused.
func formValue(f *form, name, field string, def any) string {
	if f != nil && f.name == name {
		return f.values.Get(field)
	}
	if def == nil {
		return ""
	}
	return fmt.Sprint(def)
}

// formChecked is the template function checked: whether the refused form
// name had value ticked in field, or def when that form was not refused.
func formChecked(f *form, name, field, value string, def bool) bool {
	if f != nil && f.name == name {
		return slices.Contains(f.values[field], value)
	}
	return def
}

// fieldError is the template function ferr: the message next to field of
// the refused form name, if it is about that field.
func fieldError(f *form, name, field string) string {
	if f != nil && f.name == name && f.field == field {
		return f.msg
	}
	return ""
}

// formError is the template function formerr: the message above the
// refused form name when it is about none of its fields.
func formError(f *form, name string) string {
	if f != nil && f.name == name && f.field == "" {
		return f.msg
	}
	return ""
}

// when shows a time with its zone (UTC), or "never" for none.
func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return "never"
		}
		return v.UTC().Format("2006-01-02 15:04 UTC")
	case *time.Time:
		if v == nil {
			return "never"
		}
		return when(*v)
	}
	return ""
}

// day shows the date of a time, in UTC.
func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// plural writes n with the singular or plural noun: "1 token", "3 tokens".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// agree writes n with its noun and a verb that agrees with it: "1 token
// stops", "3 tokens stop".
func agree(n int, one, many, verbOne, verbMany string) string {
	if n == 1 {
		return plural(n, one, many) + " " + verbOne
	}
	return plural(n, one, many) + " " + verbMany
}

// number reads a whole number from a form field, or refuses it with a
// hint next to the field.
func number(r *http.Request, field string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get(field)))
	if err != nil {
		return 0, gatehouse.InvalidField(field, "Enter a whole number.", "%s must be a whole number", field)
	}
	return n, nil
}
