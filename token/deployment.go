package token

import (
	"fmt"
	"regexp"
	"strings"
)

// A deployment prefix (SPEC §10.1) makes a deployment's secrets its own,
// so that a secret scanner can tell whose they are: with the deployment
// name "acme", an API token is "acme_ak_" followed by the random body and
// a checksum over everything before it. Strings made under the default
// prefixes or under any other deployment name keep parsing: a name is
// only ever chosen for new strings.

// Deployment name limits.
const (
	MinDeploymentLen = 2
	MaxDeploymentLen = 12
)

// codes are the two-letter kind codes of deployment prefixes.
var codes = map[Prefix]string{
	AccessToken: "at", RefreshToken: "rt", APIToken: "ak", ClientSecret: "cs", ClientID: "ci", Session: "se",
	AuthCode: "ac", DeviceCode: "dc",
}

// kindOfCode maps a two-letter code back to its kind.
func kindOfCode(a, b byte) Prefix {
	switch string([]byte{a, b}) {
	case "at":
		return AccessToken
	case "rt":
		return RefreshToken
	case "ac":
		return AuthCode
	case "dc":
		return DeviceCode
	case "ak":
		return APIToken
	case "cs":
		return ClientSecret
	case "ci":
		return ClientID
	case "se":
		return Session
	}
	return ""
}

// CheckDeployment returns an error unless name is a valid deployment name:
// 2 to 12 of [a-z0-9], starting with a letter.
func CheckDeployment(name string) error {
	if !validDeployment(name) {
		return fmt.Errorf("token prefix %q: want %d to %d of a-z and 0-9, starting with a letter", name, MinDeploymentLen, MaxDeploymentLen)
	}
	return nil
}

func validDeployment(name string) bool {
	if len(name) < MinDeploymentLen || len(name) > MaxDeploymentLen || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// NewWith returns a fresh token string of kind p under the deployment
// name (see CheckDeployment); an empty name means the default prefix
// (New). It panics on an invalid name: check it when it is configured.
func NewWith(deployment string, p Prefix) string {
	if deployment == "" {
		return New(p)
	}
	if !validDeployment(deployment) || codes[p] == "" {
		panic("token: invalid deployment name or kind")
	}
	head := deployment + "_" + codes[p] + "_"
	b := make([]byte, len(head)+bodyLen+checksumLen)
	copy(b, head)
	fill(b[len(head) : len(head)+bodyLen])
	sum := checksum(string(b[:len(head)+bodyLen]))
	copy(b[len(head)+bodyLen:], sum[:])
	return string(b)
}

// parseDeployment is Parse for a string longer than a default-prefix
// token: name_kk_ then the body and checksum.
func parseDeployment(s string) (Prefix, bool) {
	n := len(s) - bodyLen - checksumLen - 4 // the name's length
	if n < MinDeploymentLen || n > MaxDeploymentLen || s[n] != '_' || s[n+3] != '_' || !validDeployment(s[:n]) {
		return "", false
	}
	p := kindOfCode(s[n+1], s[n+2])
	if p == "" {
		return "", false
	}
	for i := n + 4; i < len(s); i++ {
		if !isBase62(s[i]) {
			return "", false
		}
	}
	if want := checksum(s[:len(s)-checksumLen]); string(want[:]) != s[len(s)-checksumLen:] {
		return "", false
	}
	return p, true
}

// Kinds are the kinds a secret scanner looks for, in the order
// Patterns lists them, with their names.
var Kinds = []struct {
	Name   string
	Prefix Prefix
}{
	{"access_token", AccessToken}, {"refresh_token", RefreshToken}, {"api_token", APIToken},
	{"client_secret", ClientSecret}, {"client_id", ClientID},
}

// Pattern returns the regular expression (RE2 and PCRE alike) matching
// every string of kind p under the deployment name, or under the default
// prefix when the name is empty. It is anchored on word boundaries, not
// on the start of the text, as a scanner needs.
func Pattern(deployment string, p Prefix) string {
	head := regexp.QuoteMeta(string(p))
	if deployment != "" {
		head = regexp.QuoteMeta(deployment + "_" + codes[p] + "_")
	}
	return fmt.Sprintf(`\b%s[0-9A-Za-z]{%d}\b`, head, bodyLen+checksumLen)
}

// Patterns returns, per kind name, Pattern for the deployment.
func Patterns(deployment string) []string {
	var out []string
	for _, k := range Kinds {
		out = append(out, k.Name+"\t"+Pattern(deployment, k.Prefix))
	}
	return out
}

// Gitleaks returns a Gitleaks configuration (TOML) with one rule per kind
// of secret the deployment issues, extending Gitleaks' default rules.
func Gitleaks(deployment string) string {
	var b strings.Builder
	b.WriteString("# Gatehouse secrets: gatehouse token-patterns --format gitleaks\n[extend]\nuseDefault = true\n")
	name := deploymentName(deployment)
	for _, k := range Kinds {
		if k.Prefix == ClientID {
			continue // not a secret
		}
		fmt.Fprintf(&b, "\n[[rules]]\nid = %q\ndescription = %q\nregex = '''%s'''\nkeywords = [%q]\ntags = [\"gatehouse\", %q]\n",
			name+"-"+strings.ReplaceAll(k.Name, "_", "-"), "Gatehouse "+strings.ReplaceAll(k.Name, "_", " ")+" ("+name+")",
			Pattern(deployment, k.Prefix), keyword(deployment, k.Prefix), k.Name)
	}
	return b.String()
}

// TruffleHog returns a TruffleHog configuration (YAML) with one custom
// regex detector per kind of secret the deployment issues.
func TruffleHog(deployment string) string {
	var b strings.Builder
	b.WriteString("# Gatehouse secrets: gatehouse token-patterns --format trufflehog\ndetectors:\n")
	name := deploymentName(deployment)
	for _, k := range Kinds {
		if k.Prefix == ClientID {
			continue
		}
		fmt.Fprintf(&b, "  - name: %s\n    keywords:\n      - %s\n    regex:\n      %s: '%s'\n",
			name+"_"+k.Name, keyword(deployment, k.Prefix), k.Name, Pattern(deployment, k.Prefix))
	}
	return b.String()
}

// deploymentName names the deployment in scanner rules.
func deploymentName(deployment string) string {
	if deployment == "" {
		return "gatehouse"
	}
	return deployment
}

// keyword is the literal a scanner looks for before trying the pattern.
func keyword(deployment string, p Prefix) string {
	if deployment == "" {
		return string(p)
	}
	return deployment + "_" + codes[p] + "_"
}
