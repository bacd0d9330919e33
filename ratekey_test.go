package gatehouse_test

import (
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestRateKeys(t *testing.T) {
	ann := &gatehouse.User{ID: "usr_ann"}
	user := gatehouse.RateKey{Kind: gatehouse.RateKindUser, ID: "usr_ann"}
	token := gatehouse.RateKey{Kind: gatehouse.RateKindAPIToken, ID: "akt_1"}
	cases := []struct {
		name string
		p    gatehouse.Principal
		want []gatehouse.RateKey
	}{
		{"password token", gatehouse.Principal{User: ann, Method: gatehouse.MethodPassword, CredentialID: "tok_1"}, []gatehouse.RateKey{user}},
		{"client credentials", gatehouse.Principal{User: ann, Method: gatehouse.MethodClientCredentials, CredentialID: "tok_2"}, []gatehouse.RateKey{user}},
		{"admin UI session", gatehouse.Principal{User: ann, Method: gatehouse.MethodSession, CredentialID: "ses_1"}, []gatehouse.RateKey{user}},
		{"API token, anonymous admin", gatehouse.Principal{Method: gatehouse.MethodAPIToken, CredentialID: "akt_1"}, []gatehouse.RateKey{token}},
		{"API token acting as a user", gatehouse.Principal{User: ann, Method: gatehouse.MethodAPIToken, CredentialID: "akt_1", ActingAs: "ann@example.com"}, []gatehouse.RateKey{user, token}},
		// A rolled token counts where the first of its line does.
		{"rolled API token", gatehouse.Principal{Method: gatehouse.MethodAPIToken, CredentialID: "akt_2", CredentialLine: "akt_1"}, []gatehouse.RateKey{token}},
		{"rolled API token acting as a user", gatehouse.Principal{User: ann, Method: gatehouse.MethodAPIToken, CredentialID: "akt_2", CredentialLine: "akt_1", ActingAs: "ann@example.com"}, []gatehouse.RateKey{user, token}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.RateKeys(); !slices.Equal(got, c.want) {
				t.Fatalf("RateKeys() = %v, want %v", got, c.want)
			}
		})
	}
}

func TestRateKeyString(t *testing.T) {
	for _, k := range []gatehouse.RateKey{
		{Kind: gatehouse.RateKindUser, ID: "usr_1"},
		{Kind: gatehouse.RateKindAPIToken, ID: "akt_1"},
		{Kind: gatehouse.RateKindUser, ID: "with:colon"},
	} {
		got, ok := gatehouse.ParseRateKey(k.String())
		if !ok || got != k {
			t.Errorf("ParseRateKey(%q) = %v, %v; want %v", k.String(), got, ok, k)
		}
	}
	// The stored form of the first release reads back unchanged.
	if k, ok := gatehouse.ParseRateKey("apitoken:akt_9"); !ok || k != (gatehouse.RateKey{Kind: gatehouse.RateKindAPIToken, ID: "akt_9"}) {
		t.Errorf("apitoken:akt_9 read as %v, %v", k, ok)
	}
	for _, s := range []string{"", "user", "token:x", ":x"} {
		if k, ok := gatehouse.ParseRateKey(s); ok {
			t.Errorf("ParseRateKey(%q) = %v, ok", s, k)
		}
	}
}
