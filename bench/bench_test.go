package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/redistest"
)

// TestBenchRuns runs every row briefly so the bench command keeps working.
func TestBenchRuns(t *testing.T) {
	var out bytes.Buffer
	results, err := Main(context.Background(), Options{Concurrency: 4, Duration: 150 * time.Millisecond, Warmup: 50 * time.Millisecond, Out: &out}, DefaultRows())
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

// TestBenchRounds runs the baseline and a row in turn twice: each result
// holds both rounds, with a ratio to the baseline run just before it.
func TestBenchRounds(t *testing.T) {
	var out bytes.Buffer
	rows := DefaultRows()[:1]
	results, err := Main(context.Background(), Options{Concurrency: 4, Duration: 150 * time.Millisecond, Rounds: 2, Out: &out}, rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[1].Name != rows[0].Name {
		t.Fatalf("results %+v", results)
	}
	for _, r := range results {
		if len(r.Ratios) != 2 || r.Requests == 0 || r.Errors != 0 || r.Duration < 300*time.Millisecond {
			t.Errorf("%s: %d ratios, %d requests in %v, %d errors", r.Name, len(r.Ratios), r.Requests, r.Duration, r.Errors)
		}
	}
	if results[0].Ratio(results[0]) != 1 {
		t.Errorf("the baseline's ratio to itself: %v", results[0].Ratios)
	}
	if !strings.Contains(out.String(), "rounds' range") || !strings.Contains(out.String(), "2 rounds") {
		t.Fatalf("table:\n%s", out.String())
	}
}

// TestBenchClusterCeiling runs a cluster row briefly on PostgreSQL and
// Redis: the ceiling row (the bare handler with a node's admission alone)
// runs between the baseline and the row, its requests admitted through
// Redis (they leave their budget's count there), and the table explains it.
func TestBenchClusterCeiling(t *testing.T) {
	rc := redistest.Client(t) // skips (fails under CI) without Redis
	var out bytes.Buffer
	rows := DefaultRows()[:1]
	results, err := Main(context.Background(), Options{Concurrency: 4, Duration: 150 * time.Millisecond,
		DatabaseURL: pgtest.Schema(t), RedisURL: redistest.URL(), Out: &out}, rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 || results[1].Name != ceilingName || results[2].Name != rows[0].Name {
		t.Fatalf("results %+v", results)
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors", r.Name, r.Requests, r.Errors)
		}
	}
	keys, err := rc.Do(context.Background(), rc.B().Keys().Pattern("*ceiling:rl:*acc_bench_ceiling*").Build()).AsStrSlice()
	if err != nil || len(keys) == 0 {
		t.Fatalf("the ceiling's budget in Redis: %v, %v", keys, err)
	}
	if !strings.Contains(out.String(), "The ceiling row") {
		t.Fatalf("table:\n%s", out.String())
	}
}

// TestCombine: a row's rounds add up, its p50 and p99 are the rounds'
// medians, and each round's ratio is to the baseline's same round.
func TestCombine(t *testing.T) {
	rounds := []Result{
		{Name: "row", Requests: 100, Duration: time.Second, CPU: time.Second, AllocsPerOp: 10, P50: 3, P99: 30},
		{Name: "row", Requests: 300, Duration: time.Second, CPU: time.Second, AllocsPerOp: 20, P50: 1, P99: 10, Errors: 2},
		{Name: "row", Requests: 200, Duration: time.Second, CPU: time.Second, AllocsPerOp: 10, P50: 2, P99: 20},
	}
	base := []Result{{Requests: 400, Duration: time.Second}, {Requests: 600, Duration: time.Second}, {Requests: 400, Duration: time.Second}}
	got := combine(rounds, base)
	if got.Requests != 600 || got.Errors != 2 || got.Duration != 3*time.Second || got.CPU != 3*time.Second {
		t.Fatalf("sums: %+v", got)
	}
	if got.P50 != 2 || got.P99 != 20 {
		t.Fatalf("medians: p50 %v p99 %v", got.P50, got.P99)
	}
	if want := (10*100 + 20*300 + 10*200) / 600.0; got.AllocsPerOp != want {
		t.Fatalf("allocs %v, want %v", got.AllocsPerOp, want)
	}
	if want := []float64{0.25, 0.5, 0.5}; !slices.Equal(got.Ratios, want) || got.Ratio(Result{}) != 1.25/3 {
		t.Fatalf("ratios %v (mean %v)", got.Ratios, got.Ratio(Result{}))
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

// buildGatehouse builds cmd/gatehouse, the server the soak and churn
// modes run as processes.
func buildGatehouse(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gatehouse")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/gatehouse").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestSoakRuns runs the soak briefly on both stores so the soak mode keeps
// working: every request answered as expected, tokens issued, the server
// process's RSS and the database's size read at every sample.
func TestSoakRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server process for 20 s")
	}
	bin := buildGatehouse(t)
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			opt := SoakOptions{Binary: bin, Duration: 20 * time.Second, Interval: 5 * time.Second, Rate: 100, Concurrency: 4, Stderr: os.Stderr}
			if store == "postgres" {
				opt.DatabaseURL = pgtest.Schema(t)
			}
			var out bytes.Buffer
			opt.Out = &out
			res, err := Soak(context.Background(), opt)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if res.Requests == 0 || res.Errors != 0 || len(res.Samples) < 3 {
				t.Fatalf("%d requests, %d errors, %d samples\n%s", res.Requests, res.Errors, len(res.Samples), out.String())
			}
			var issued int64
			for _, s := range res.Samples {
				if s.RSSBytes <= 0 || s.DBBytes <= 0 {
					t.Fatalf("sample %+v\n%s", s, out.String())
				}
				issued += s.Issued
			}
			if issued == 0 || !strings.Contains(out.String(), "Last third against middle third") {
				t.Fatalf("%d tokens issued\n%s", issued, out.String())
			}
			t.Log("\n" + out.String())
		})
	}
}

// TestChurnRuns runs the churn benchmark briefly on two nodes so the churn
// mode keeps working — every phase measured, revocations done, the
// control's too, through the node of another cluster — and checks its
// promise: no unrelated principal is answered 503.
func TestChurnRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two server processes")
	}
	redistest.Client(t) // skips (fails under CI) without Redis
	bin := buildGatehouse(t)
	var out bytes.Buffer
	res, err := Churn(context.Background(), ChurnOptions{Binary: bin, DatabaseURL: pgtest.Schema(t), RedisURL: redistest.URL(),
		Duration: 3 * time.Second, Rate: 100, Concurrency: 4, Principals: 2, Rounds: 1, Control: true, Out: &out, Stderr: os.Stderr})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.Phases) != 3 || res.Phases[0].Requests == 0 || res.Phases[1].Requests == 0 || res.Phases[1].Revocations == 0 {
		t.Fatalf("%+v\n%s", res, out.String())
	}
	if c := res.Phases[2]; c.Requests == 0 || c.Revocations == 0 || c.RevocationsFailed != 0 || res.ControlRatio <= 0 {
		t.Fatalf("control phase %+v, ratio %.2f: the third node must revoke in the same database\n%s", c, res.ControlRatio, out.String())
	}
	for _, p := range res.Phases {
		if p.Errors != 0 {
			t.Fatalf("phase %+v: answers other than 200 and 503\n%s", p, out.String())
		}
	}
	// Revocations of other users' credentials never hold up these
	// principals: they rest on nothing that was revoked.
	if res.Unavailable != 0 {
		t.Fatalf("%d answers 503 to unrelated principals under churn\n%s", res.Unavailable, out.String())
	}
	t.Log("\n" + out.String())
}
