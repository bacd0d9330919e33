package plan_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
)

func ptr[T any](v T) *T { return &v }

func TestApply(t *testing.T) {
	raw := func(s string) *json.RawMessage { m := json.RawMessage(s); return &m }
	cases := []struct {
		name  string
		kind  gatehouse.PlanKind
		patch plan.Patch
		want  string // the plan as JSON, or the error field
		err   bool
	}{
		{"networks masked and deduplicated", gatehouse.PlanAPIToken, plan.Patch{AllowedIPs: &[]string{"10.1.2.3/8", "10.0.0.0/8", "::ffff:192.0.2.1", "2001:DB8::1"}},
			`{"allowed_ips":["10.0.0.0/8","192.0.2.1/32","2001:db8::1/128"]}`, false},
		{"a mapped prefix", gatehouse.PlanCredential, plan.Patch{AllowedIPs: &[]string{"::ffff:192.0.2.0/120"}}, `{"allowed_ips":["192.0.2.0/24"]}`, false},
		{"bad prefix", gatehouse.PlanCredential, plan.Patch{AllowedIPs: &[]string{"10.0.0.0/33"}}, "allowed_ips", true},
		{"host name", gatehouse.PlanCredential, plan.Patch{AllowedIPs: &[]string{"localhost"}}, "allowed_ips", true},
		{"zone", gatehouse.PlanCredential, plan.Patch{AllowedIPs: &[]string{"fe80::1%eth0"}}, "allowed_ips", true},
		{"too many", gatehouse.PlanCredential, plan.Patch{AllowedIPs: ptr(make([]string, 101))}, "allowed_ips", true},
		{"users take none", gatehouse.PlanUser, plan.Patch{AllowedIPs: &[]string{"10.0.0.0/8"}}, "allowed_ips", true},
		{"users may clear none", gatehouse.PlanUser, plan.Patch{AllowedIPs: &[]string{}}, `{}`, false},
		{"metadata compacted", gatehouse.PlanUser, plan.Patch{Metadata: raw(`{ "a" : [1, 2] }`)}, `{"metadata":{"a":[1,2]}}`, false},
		{"metadata cleared", gatehouse.PlanUser, plan.Patch{Metadata: raw(`{}`)}, `{}`, false},
		{"metadata array", gatehouse.PlanUser, plan.Patch{Metadata: raw(`[1]`)}, "metadata", true},
		{"metadata string", gatehouse.PlanUser, plan.Patch{Metadata: raw(`"x"`)}, "metadata", true},
		{"metadata too big", gatehouse.PlanUser, plan.Patch{Metadata: raw(`{"k":"` + strings.Repeat("x", 4090) + `"}`)}, "metadata", true},
		{"metadata at the limit", gatehouse.PlanUser, plan.Patch{Metadata: raw(`{"k":"` + strings.Repeat("x", 4088) + `"}`)}, "", false},
		{"metadata number too large", gatehouse.PlanUser, plan.Patch{Metadata: raw(`{"a":{"b":[1,1e400]}}`)}, "metadata", true},
		{"metadata number too small", gatehouse.PlanUser, plan.Patch{Metadata: raw(`{"a":-1e309}`)}, "metadata", true},
		{"metadata big and tiny numbers", gatehouse.PlanUser, plan.Patch{Metadata: raw(`{"a":1.7e308,"b":1e-400,"c":12345678901234567890}`)},
			`{"metadata":{"a":1.7e308,"b":1e-400,"c":12345678901234567890}}`, false},
		{"metadata lone high surrogate", gatehouse.PlanUser, plan.Patch{Metadata: raw(`{"a":"x\ud800y"}`)}, "metadata", true},
		{"metadata lone low surrogate", gatehouse.PlanUser, plan.Patch{Metadata: raw(`{"\udc00":1}`)}, "metadata", true},
		{"metadata high surrogate at the end", gatehouse.PlanUser, plan.Patch{Metadata: raw(`{"a":"\ud83d"}`)}, "metadata", true},
		{"metadata surrogate pair", gatehouse.PlanUser, plan.Patch{Metadata: raw(`{"a":"\ud83d\ude80","b":"\\ud800","c":"\u00e9"}`)},
			`{"metadata":{"a":"\ud83d\ude80","b":"\\ud800","c":"\u00e9"}}`, false},
		{"external id of 128 characters", gatehouse.PlanUser, plan.Patch{ExternalID: ptr(strings.Repeat("é", 128))}, "", false},
		{"external id too long", gatehouse.PlanUser, plan.Patch{ExternalID: ptr(strings.Repeat("é", 129))}, "external_id", true},
		{"external id with a newline", gatehouse.PlanUser, plan.Patch{ExternalID: ptr("a\nb")}, "external_id", true},
		{"external id not UTF-8", gatehouse.PlanUser, plan.Patch{ExternalID: ptr("a\xffb")}, "external_id", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := plan.Apply(tc.kind, gatehouse.Plan{}, tc.patch)
			if tc.err {
				var e *gatehouse.Error
				if err == nil || !asError(err, &e) || e.Code != gatehouse.EInvalidRequest || e.Field != tc.want {
					t.Fatalf("err %v, want invalid_request about %s", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				return
			}
			b, _ := json.Marshal(got)
			if string(b) != tc.want {
				t.Fatalf("plan %s, want %s", b, tc.want)
			}
		})
	}
}

func asError(err error, e **gatehouse.Error) bool {
	v, ok := err.(*gatehouse.Error)
	*e = v
	return ok
}

func TestAllowList(t *testing.T) {
	l, err := gatehouse.ParseAllowList([]string{"203.0.113.0/24", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"203.0.113.1": true, "203.0.114.1": false, "2001:db8::1": true, "2001:db9::1": false,
		"::ffff:203.0.113.9": true, "": false, "unknown": false, "fe80::1%eth0": false,
	} {
		if got := l.Allows(addr); got != want {
			t.Errorf("Allows(%q) = %v, want %v", addr, got, want)
		}
	}
	if !gatehouse.AllowList(nil).Allows("anything") {
		t.Error("a nil list refuses")
	}
	if (gatehouse.AllowList{}).Allows("203.0.113.1") {
		t.Error("an empty, non-nil list allows")
	}
}
