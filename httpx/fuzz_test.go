package httpx

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// FuzzDecodeJSON feeds arbitrary bodies to the strict JSON decoder used by
// every management endpoint: it never panics, refuses with a 4xx code, and
// what it accepts is valid, NUL-free JSON.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"name":"Foo","description":"Bar"}`, `{"roles":["admin"]}`, `{}`, `[]`, `{"a":1} {}`,
		`{"name":"\u0000"}`, "{\"name\":\"\xff\"}", `{"rate_limit":{"burst":1e309}}`, ``, `null`, `{"name":` + strings.Repeat("[", 1000), `{"name":"a","name":"b"}`, `{"rate_limit":{"burst":1,"burst":2}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var dst struct {
			Name        string   `json:"name"`
			Description string   `json:"description"`
			Roles       []string `json:"roles"`
			RateLimit   *struct {
				Burst *int `json:"burst"`
			} `json:"rate_limit"`
		}
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		err := DecodeJSON(httptest.NewRecorder(), r, &dst, false)
		if err != nil {
			if s := Status(gatehouse.ErrorCode(err)); s < 400 || s >= 500 {
				t.Fatalf("status %d for %q: %v", s, body, err)
			}
			if strings.Contains(gatehouse.ErrorMessage(err), "repeats the key") && !repeatsKey(t, []byte(body)) {
				t.Fatalf("refused %q for a repeated key it does not have", body)
			}
			return
		}
		if !json.Valid([]byte(body)) || strings.ContainsRune(body, 0) {
			t.Fatalf("accepted %q", body)
		}
		if repeatsKey(t, []byte(body)) {
			t.Fatalf("accepted %q, which repeats a key", body)
		}
		if strings.ContainsRune(dst.Name+dst.Description, 0) {
			t.Fatalf("NUL decoded from %q", body)
		}
	})
}

// repeatsKey is CheckDuplicateKeys written the slow, plain way, as the
// fuzzer's oracle: it walks body's tokens, keeping a set of folded keys
// per open object.
func repeatsKey(t *testing.T, body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type open struct {
		keys    map[string]bool // nil for an array
		keyNext bool
	}
	var stack []open
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false
		}
		if err != nil {
			t.Fatalf("oracle on accepted JSON %q: %v", body, err)
		}
		top := len(stack) - 1
		if top >= 0 && stack[top].keys != nil && stack[top].keyNext {
			if tok == json.Delim('}') {
				stack = stack[:top]
				continue
			}
			k := string(foldKey(nil, []byte(tok.(string))))
			if stack[top].keys[k] {
				return true
			}
			stack[top].keys[k], stack[top].keyNext = true, false
			continue
		}
		if top >= 0 && stack[top].keys != nil {
			stack[top].keyNext = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, open{keys: map[string]bool{}, keyNext: true})
		case json.Delim('['):
			stack = append(stack, open{})
		case json.Delim(']'):
			stack = stack[:top]
		}
	}
}

// FuzzParseForm does the same for form bodies.
func FuzzParseForm(f *testing.F) {
	for _, s := range []string{"username=a&password=b", "a=%ff", "a=%00", "a;b", "=", "%", "a=1&a=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := ParseForm(httptest.NewRecorder(), r); err != nil {
			if s := Status(gatehouse.ErrorCode(err)); s != http.StatusBadRequest && s != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d for %q", s, body)
			}
			return
		}
		for k, vs := range r.Form {
			for _, v := range vs {
				if CheckText("x", k+v) != nil {
					t.Fatalf("accepted bad text %q=%q", k, v)
				}
			}
		}
	})
}
