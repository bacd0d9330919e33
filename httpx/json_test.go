package httpx

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/plan"
)

// TestCheckDuplicateKeys: a key repeated in any object, at any depth, is
// refused; the same key in sibling objects, in an array's objects, or as
// a string value is not a repeat.
func TestCheckDuplicateKeys(t *testing.T) {
	for _, bad := range []string{
		`{"name":"a","name":"b"}`,
		`{"roles":["member"],"name":"x","roles":["admin"]}`,
		`{"rate_limit":{"burst":1,"burst":1000}}`,
		`{"metadata":{"a":{"b":1,"b":2}}}`,
		`[{"a":1},{"a":1,"a":2}]`,
		`{"a":[1,{"x":1}],"b":{},"a":2}`,
		`{"roles":["member"],"ROLES":["admin"]}`,
		`{"status":"active","\u017ftatus":"disabled"}`,
		`{"rate_limit":{"daily":1,"burst":1,"Burst":1000000}}`,
		`{"kelvin":1,"\u212aelvin":2}`,
		`{"a":1,"\u0061":2}`,
		`{"a\"b":1, "a\"B" : 2}`,
		"{\"a\" :1,\n\t\"a\"\r\n:2}",
	} {
		if err := CheckDuplicateKeys([]byte(bad)); gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest {
			t.Errorf("%s: %v", bad, err)
		}
		var dst map[string]any
		if err := UnmarshalStrict([]byte(bad), &dst); gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest {
			t.Errorf("UnmarshalStrict %s: %v", bad, err)
		}
	}
	for _, good := range []string{
		`{}`, `[]`, `null`, `"a"`, `{"a":{"a":{"a":1}}}`, `{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}]}`,
		`{"a":"a","b":"a"}`, `[{"a":1},{"a":1}]`, `{"a":[],"b":[[],{}],"c":{}}`,
		`{"a":"b:c","b":["a",":"],"c":"\"a\":"}`, `{"a\\":1,"a":2}`, `{"ab":1,"a\u0062c":2,"abc\"":3}`,
	} {
		if err := CheckDuplicateKeys([]byte(good)); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
}

// TestDecodeJSONRefusesNull: null is not an object, even where the body
// may be left out.
func TestDecodeJSONRefusesNull(t *testing.T) {
	for _, allowEmpty := range []bool{false, true} {
		for _, body := range []string{"null", " null\n"} {
			var dst struct{ Name string }
			r := httptest.NewRequest("PATCH", "/", strings.NewReader(body))
			if err := DecodeJSON(httptest.NewRecorder(), r, &dst, allowEmpty); gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest {
				t.Errorf("%q (allowEmpty %v): %v", body, allowEmpty, err)
			}
		}
	}
}

// TestDecodeJSONRefusesLoneSurrogates: half of a UTF-16 pair escaped
// alone, in any string of the body, is refused (encoding/json would store
// U+FFFD in its place); a whole pair, and an escaped backslash before
// "u", are kept as written.
func TestDecodeJSONRefusesLoneSurrogates(t *testing.T) {
	decode := func(body string) (string, error) {
		var dst struct{ Name string }
		err := DecodeJSON(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(body)), &dst, false)
		return dst.Name, err
	}
	for _, body := range []string{`{"name":"x\ud800y"}`, `{"name":"\udc00"}`, `{"name":"\ud800\u0041"}`, `{"name":"\uD83D"}`} {
		if _, err := decode(body); gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest {
			t.Errorf("%s: %v", body, err)
		}
	}
	for body, want := range map[string]string{`{"name":"\ud83d\ude80"}`: "\U0001F680", `{"name":"\\ud800"}`: `\ud800`} {
		got, err := decode(body)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v", body, got, err)
		}
	}
}

// TestUnmarshalStrictKeepsFieldErrors: a field that decodes itself and
// refuses its value names itself in the error (as plan.Patch's rate_limit
// and quota do), rather than the body being called malformed.
func TestUnmarshalStrictKeepsFieldErrors(t *testing.T) {
	var v struct {
		RateLimit plan.RateLimitPatch `json:"rate_limit"`
	}
	for _, body := range []string{
		`{"rate_limit":{"daily":1.5,"burst":1,"burst_window_seconds":1}}`,
		`{"rate_limit":{"daily":"5","burst":1,"burst_window_seconds":1}}`,
		`{"rate_limit":{"daily":1e20,"burst":1,"burst_window_seconds":1}}`,
	} {
		err := UnmarshalStrict([]byte(body), &v)
		var e *gatehouse.Error
		if !errors.As(err, &e) || e.Code != gatehouse.EInvalidRequest || e.Field != "rate_limit" {
			t.Errorf("%s: %v", body, err)
		}
	}
}
