package httpx

import (
	"testing"

	"github.com/gatehouse/gatehouse"
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
	} {
		if err := CheckDuplicateKeys([]byte(good)); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
}
