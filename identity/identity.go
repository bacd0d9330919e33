// Package identity holds the rules that make people who they seem
// (SPEC §10.8): what a new password must be, and which e-mail addresses
// are refused because they could pass for another.
//
// Both checks are pure functions of their input, safe for concurrent use;
// the service calls them before anything is hashed or stored.
package identity

// Refusal says which rule refused an input: Rule is a sentence for an API
// client that names the rule, Hint the same for a person filling a form.
type Refusal struct {
	Rule, Hint string
}

// Error returns the rule.
func (r *Refusal) Error() string { return r.Rule }
