package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestBenchRuns runs every row briefly so the bench command keeps working.
func TestBenchRuns(t *testing.T) {
	var out bytes.Buffer
	results, err := Main(context.Background(), Options{Concurrency: 4, Duration: 150 * time.Millisecond, Out: &out}, DefaultRows())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(DefaultRows())+1 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors", r.Name, r.Requests, r.Errors)
		}
	}
	if !strings.Contains(out.String(), "vs baseline") {
		t.Fatalf("table:\n%s", out.String())
	}
}

// TestScaleRuns runs the scale mode small.
func TestScaleRuns(t *testing.T) {
	var out bytes.Buffer
	res, err := Scale(context.Background(), ScaleOptions{Tokens: 20_000, Principals: 1000, Samples: 200, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if res.ColdP99 <= 0 || res.RSSBytes <= 0 || !strings.Contains(out.String(), "cold validation") {
		t.Fatalf("result %+v\n%s", res, out.String())
	}
}
