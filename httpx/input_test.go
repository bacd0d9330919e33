package httpx

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestCheckInput(t *testing.T) {
	long := strings.Repeat("a", MaxPathSegmentBytes+1)
	many := strings.Repeat("a=1&", MaxQueryParams) + "a=1"
	for _, c := range []struct {
		target string
		ok     bool
	}{
		{"/v1/users/usr_0123", true},
		{"/v1/users?email=ann%40example.com&cursor=dXNy", true},
		{"/v1/users/%C3%A9t%C3%A9", true},
		{"/v1/users/" + strings.Repeat("a", MaxPathSegmentBytes), true},
		{"/v1/users/%ff", false},
		{"/v1/workspaces/%00", false},
		{"/v1/users/a%00b/x", false},
		{"/v1/users/%c0%af", false},    // overlong '/'
		{"/v1/users/%e0%80%80", false}, // overlong NUL
		{"/v1/users/%ed%a0%80", false}, // a surrogate
		{"/v1/users/" + long, false},
		{"/v1/audit?actor=%ff", false},
		{"/v1/audit?actor=%00", false},
		{"/v1/audit?%ff=1", false},
		{"/v1/audit?actor=" + strings.Repeat("a", MaxQueryValueBytes+1), false},
		{"/v1/audit?actor=%zz", false},
		{"/v1/audit?a=1;b=2", false},
		{"/v1/audit?" + many, false},
	} {
		err := CheckInput(httptest.NewRequest("GET", c.target, nil))
		if (err == nil) != c.ok {
			t.Errorf("%.80s: err %v, want ok %v", c.target, err, c.ok)
		}
		if err != nil && gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest {
			t.Errorf("%.80s: code %q", c.target, gatehouse.ErrorCode(err))
		}
	}
}
