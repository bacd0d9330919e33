package servertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/gatehouse/gatehouse/internal/localserver"
)

// An HTML page (the console's, reached through a redirect from a root
// path such as /device) is checked as a string.
func init() {
	openapi3filter.RegisterBodyDecoder("text/html", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
}

// contract checks answers against the server's own OpenAPI document
// (GET /openapi.json), fetched the first time it is needed.
type contract struct {
	once   sync.Once
	router routers.Router
	err    error
}

// load fetches and loads the document from the server itself, with every
// server URL moved to base, the URL the tests send to (the document
// advertises the public URL, which tests do not dial; base may be a proxy
// in front of the server).
func (c *contract) load(server *localserver.Client, base string) (routers.Router, error) {
	c.once.Do(func() {
		r, err := server.Do(context.Background(), "GET", "/openapi.json", nil)
		if err != nil {
			c.err = err
			return
		}
		if r.Status != http.StatusOK {
			c.err = fmt.Errorf("GET /openapi.json: %d %s", r.Status, r.Body)
			return
		}
		doc, err := openapi3.NewLoader().LoadFromData(r.Body)
		if err != nil {
			c.err = fmt.Errorf("load /openapi.json: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			c.err = fmt.Errorf("/openapi.json is not valid OpenAPI: %w", err)
			return
		}
		rebase := func(ss openapi3.Servers) error {
			for _, s := range ss {
				u, err := url.Parse(s.URL)
				if err != nil {
					return err
				}
				s.URL = base + u.Path
			}
			return nil
		}
		if c.err = rebase(doc.Servers); c.err != nil {
			return
		}
		for _, item := range doc.Paths.Map() {
			if c.err = rebase(item.Servers); c.err != nil {
				return
			}
		}
		c.router, c.err = gorillamux.NewRouter(doc)
	})
	return c.router, c.err
}

// checkContract reports, as a test error, an answer to a request for an
// operation of the document that the document does not allow: a status it
// does not list, a body that does not match the status's schema (every
// response schema refuses fields it does not name), or a body where it
// has none. Requests for anything else (the admin UI, the gateway's
// upstream, an unknown path or method) are not checked, nor are the
// answers of an Env without a Server (a test's proxy in front of one).
func (e *Env) checkContract(method, path string, headers []string, r *localserver.Response) {
	e.T.Helper()
	if e.Server == nil {
		return // an Env a test made for a proxy: its answers are the proxy's
	}
	router, err := e.contract.load(&localserver.Client{URL: e.Server.URL(), HTTP: e.Client}, e.URL)
	if err != nil {
		e.T.Errorf("OpenAPI contract: %v", err)
		return
	}
	req, err := http.NewRequest(method, e.URL+path, nil)
	if err != nil {
		return // not a request a client could send; the server never saw it
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.Status,
		Header:                 r.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		e.T.Errorf("OpenAPI contract: %s %s answered %d %s\n%v", method, path, r.Status, truncate(r.Body), err)
		return
	}
	if resp := route.Operation.Responses.Status(r.Status); resp != nil && len(resp.Value.Content) == 0 && len(bytes.TrimSpace(r.Body)) > 0 {
		e.T.Errorf("OpenAPI contract: %s %s answered %d with a body the document does not have: %s", method, path, r.Status, truncate(r.Body))
	}
}

func truncate(b []byte) string {
	const max = 2000
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
