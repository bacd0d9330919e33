package logx

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// attr is one attribute of a line in both forms.
type attr struct {
	key  string
	kind int // 0 string, 1 int, 2 float
	s    string
	i    int
	f    float64
}

// both writes one line with attrs through slog's own handler and through
// a Line, and returns the two outputs.
func both(t *testing.T, json bool, level slog.Level, msg string, at time.Time, attrs []attr) (slogOut, lineOut string) {
	t.Helper()
	var a, b bytes.Buffer
	ha, hb := New(NewWriter(&a, time.Hour), json, slog.LevelDebug), New(NewWriter(&b, time.Hour), json, slog.LevelDebug)
	r := slog.NewRecord(at, level, msg, 0)
	l := hb.lineAt(level, msg, at)
	for _, x := range attrs {
		switch x.kind {
		case 0:
			r.AddAttrs(slog.String(x.key, x.s))
			l.String(x.key, x.s)
		case 1:
			r.AddAttrs(slog.Int(x.key, x.i))
			l.Int(x.key, x.i)
		default:
			r.AddAttrs(slog.Float64(x.key, x.f))
			l.Float(x.key, x.f)
		}
	}
	if err := ha.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	l.End(false)
	ha.Flush()
	hb.Flush()
	return a.String(), b.String()
}

// strs are strings that slog quotes, escapes or writes as they are.
var strs = []string{"", "plain", "GET", "/v1/me", "with space", "a=b", `quo"te`, `back\slash`, "new\nline", "tab\t", "\x00\x1f\x7f",
	"é", "日本", "\u2028\u2029", "\xff\xfe", "a\u00a0b", "\u200b", "usr_06h0abc", "127.0.0.1:5432", "[::1]", "{}", "<script>&", "ok\r"}

func randString(r *rand.Rand) string {
	var sb strings.Builder
	for n := r.IntN(4); n >= 0; n-- {
		if r.IntN(3) == 0 {
			sb.WriteRune(rune(r.IntN(0x3000)))
		} else {
			sb.WriteString(strs[r.IntN(len(strs))])
		}
	}
	return sb.String()
}

var floats = []float64{0, 1, -1, 0.001, 1.234, 12.5, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 123456789.123, -0.000001234, math.MaxFloat64, math.SmallestNonzeroFloat64}

// TestLineMatchesSlog holds a Line to the bytes slog's own text and JSON
// handlers write for the same record, over fixed and random attributes,
// levels and times.
func TestLineMatchesSlog(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, time.FixedZone("x", -5*3600-30*60), time.Local}
	for i := 0; i < 3000; i++ {
		var attrs []attr
		for n := r.IntN(14); n > 0; n-- {
			a := attr{key: randString(r), kind: r.IntN(3)}
			if r.IntN(2) == 0 {
				a.key = strs[1+r.IntN(3)]
			}
			switch a.kind {
			case 0:
				a.s = randString(r)
			case 1:
				a.i = int(r.Int64()) >> r.IntN(64)
			default:
				if r.IntN(2) == 0 {
					a.f = floats[r.IntN(len(floats))]
				} else {
					a.f = float64(r.IntN(10_000_000)) / 1000
				}
			}
			attrs = append(attrs, a)
		}
		at := time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(zones[r.IntN(len(zones))])
		if i == 0 {
			at = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) // no fraction
		}
		level := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}[r.IntN(4)]
		msg := "request"
		if r.IntN(4) == 0 {
			msg = randString(r)
		}
		for _, json := range []bool{false, true} {
			want, got := both(t, json, level, msg, at, attrs)
			if want != got {
				t.Fatalf("json=%v:\nslog: %q\nline: %q", json, want, got)
			}
		}
	}
}

// TestLineAllocatesNothing: a request's line costs no allocation once the
// pool is warm.
func TestLineAllocatesNothing(t *testing.T) {
	for _, json := range []bool{false, true} {
		var out bytes.Buffer
		w := NewWriter(&out, time.Hour)
		h := New(w, json, slog.LevelInfo)
		ctx := context.Background()
		allocs := testing.AllocsPerRun(1000, func() {
			l := h.Line(ctx, slog.LevelInfo, "request")
			l.String("request_id", "0123456789abcdef01234567")
			l.String("method", "GET")
			l.String("path", "/v1/me")
			l.Int("status", 200)
			l.Int("bytes", 120)
			l.Float("duration_ms", 0.123)
			l.String("remote", "127.0.0.1")
			l.End(false)
			if out.Len() > 0 || len(w.buf) > 32<<10 {
				w.Flush()
				out.Reset()
			}
		})
		if allocs > 0 {
			t.Errorf("json=%v: %v allocations per line", json, allocs)
		}
	}
}

// slowBuffer is a concurrency-safe buffer that counts its writes.
type slowBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *slowBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *slowBuffer) snapshot() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String(), s.writes
}

// TestWriterBuffersAndFlushes: request lines wait in the buffer (no write
// until a flush); a line logged through slog (a warning, a start-up line)
// flushes everything before it at once, and so does a 5xx line ended with
// a flush; Close leaves nothing behind; lines from many goroutines arrive
// whole and in each goroutine's order.
func TestWriterBuffersAndFlushes(t *testing.T) {
	out := &slowBuffer{}
	w := NewWriter(out, time.Hour) // the timer never fires in this test
	log := slog.New(New(w, false, slog.LevelInfo))
	h := log.Handler().(*Handler)
	ctx := context.Background()
	l := h.Line(ctx, slog.LevelInfo, "request")
	l.Int("status", 200)
	l.End(false)
	if h.Line(ctx, slog.LevelDebug, "request") != nil {
		t.Fatal("a line below the level")
	}
	if s, n := out.snapshot(); n != 0 || s != "" {
		t.Fatalf("a request line was written at once: %d writes, %q", n, s)
	}
	log.With("request_id", "r1").Warn("refresh token reused")
	if s, n := out.snapshot(); n != 1 || !strings.Contains(s, "msg=request status=200\n") || !strings.Contains(s, "msg=\"refresh token reused\" request_id=r1") {
		t.Fatalf("a warning did not flush at once: %d writes, %q", n, s)
	}
	log.Info("TLS certificate reloaded")
	if s, _ := out.snapshot(); !strings.HasSuffix(s, "msg=\"TLS certificate reloaded\"\n") {
		t.Fatalf("an info line through slog waits: %q", s)
	}
	l = h.Line(ctx, slog.LevelInfo, "request")
	l.Int("status", 503)
	l.End(true)
	if s, _ := out.snapshot(); !strings.HasSuffix(s, "status=503\n") {
		t.Fatalf("a line ended with flush is not out: %q", s)
	}
	l = h.Line(ctx, slog.LevelWarn, "request")
	l.End(false)
	if s, _ := out.snapshot(); !strings.HasSuffix(s, "level=WARN msg=request\n") {
		t.Fatalf("a warning line is not out: %q", s)
	}
	if h.WithAttrs(nil).(*Handler).Line(ctx, slog.LevelInfo, "x") != nil {
		t.Fatal("a derived handler hands out lines that would lose its attributes")
	}

	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l := h.Line(context.Background(), slog.LevelInfo, "request")
				l.Int("g", g)
				l.Int("i", i)
				l.String("pad", strings.Repeat("x", i%300))
				l.End(false)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s, writes := out.snapshot()
	next := make([]int, goroutines)
	count := 0
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		var g, i int
		if !strings.Contains(line, "msg=request g=") {
			continue
		}
		f := strings.Fields(line)
		if _, err := fmtSscan(f[3], "g=", &g); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		fmtSscan(f[4], "i=", &i)
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
		count++
	}
	if count != goroutines*each {
		t.Fatalf("%d lines out of %d", count, goroutines*each)
	}
	if writes > goroutines*each/20 {
		t.Fatalf("%d writes for %d lines: not buffered", writes, count)
	}
	log.Info("after close")
	if s, _ := out.snapshot(); !strings.HasSuffix(s, "msg=\"after close\"\n") {
		t.Fatal("a line after Close was not written at once")
	}
}

// TestWriterFlushesOnItsOwn: a buffered line is written out by the timer
// without anyone flushing.
func TestWriterFlushesOnItsOwn(t *testing.T) {
	out := &slowBuffer{}
	w := NewWriter(out, 10*time.Millisecond)
	defer w.Close()
	l := New(w, true, nil).Line(context.Background(), slog.LevelInfo, "tick")
	l.End(false)
	for {
		if s, _ := out.snapshot(); strings.Contains(s, `"msg":"tick"`) {
			return
		}
		time.Sleep(5 * time.Millisecond) // the test's own deadline bounds this
	}
}

// fmtSscan reads the integer after prefix in s.
func fmtSscan(s, prefix string, v *int) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, prefix))
	*v = n
	return 1, err
}

// BenchmarkRequestLine is one request's log line, as Requests writes it,
// into a buffered Writer over a discarding output.
func BenchmarkRequestLine(b *testing.B) {
	for _, json := range []bool{false, true} {
		b.Run(map[bool]string{false: "text", true: "json"}[json], func(b *testing.B) {
			h := New(NewWriter(io.Discard, time.Hour), json, slog.LevelInfo)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l := h.Line(ctx, slog.LevelInfo, "request")
					l.String("request_id", "0123456789abcdef01234567")
					l.String("method", "GET")
					l.String("path", "/v1/me")
					l.Int("status", 200)
					l.Int("bytes", 120)
					l.Float("duration_ms", 0.123)
					l.String("remote", "127.0.0.1")
					l.String("account_id", "acc_06h3t36rqsdcwzt0af35tyssn4")
					l.String("user_id", "usr_06h3t36rramz26xj3xqys00yzw")
					l.String("auth_method", "password")
					l.String("credential_id", "tok_06h3t36rramz26xj3xqys00yzw")
					l.End(false)
				}
			})
		})
	}
}

// BenchmarkRequestLineToFile compares, writing to a file, one request's
// line as the server wrote it before logx (slog's text handler, a write
// per line, attributes built per request) with a Line into a Writer.
func BenchmarkRequestLineToFile(b *testing.B) {
	attrs := func() []slog.Attr {
		return []slog.Attr{slog.String("request_id", "0123456789abcdef01234567"), slog.String("method", "GET"),
			slog.String("path", "/v1/me"), slog.Int("status", 200), slog.Int("bytes", 120), slog.Float64("duration_ms", 0.123),
			slog.String("remote", "127.0.0.1"), slog.String("account_id", "acc_06h3t36rqsdcwzt0af35tyssn4"),
			slog.String("user_id", "usr_06h3t36rramz26xj3xqys00yzw"), slog.String("auth_method", "password"),
			slog.String("credential_id", "tok_06h3t36rramz26xj3xqys00yzw")}
	}
	ctx := context.Background()
	b.Run("slog, a write per line", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "log"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		logger := slog.New(slog.NewTextHandler(f, nil))
		b.ReportAllocs()
		for b.Loop() {
			logger.LogAttrs(ctx, slog.LevelInfo, "request", attrs()...)
		}
	})
	b.Run("logx", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "log"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		w := NewWriter(f, FlushInterval)
		defer w.Close()
		h := New(w, false, nil)
		b.ReportAllocs()
		for b.Loop() {
			l := h.Line(ctx, slog.LevelInfo, "request")
			for _, a := range attrs() {
				switch a.Value.Kind() {
				case slog.KindString:
					l.String(a.Key, a.Value.String())
				case slog.KindInt64:
					l.Int(a.Key, int(a.Value.Int64()))
				default:
					l.Float(a.Key, a.Value.Float64())
				}
			}
			l.End(false)
		}
	})
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:SECRET@db.example.com:5432/app?sslmode=require", "postgres://u:xxxxx@db.example.com:5432/app?sslmode=require"},
		{"postgres://u@db/app?password=SECRET&sslmode=disable", "postgres://u@db/app?password=xxxxx&sslmode=disable"},
		{"postgres://u@db/app?sslpassword=SECRET&PassWord=SECRET", "postgres://u@db/app?sslpassword=xxxxx&PassWord=xxxxx"},
		{"postgres:u:SECRET@host/db", "postgres:…"},
		{"gatehouse:SECRET@127.0.0.1:6379", "gatehouse:…"},
		{"redis://:SECRET@127.0.0.1:bad/0", "redis://…"},
		{"redis://:SECRET%zz@127.0.0.1:6379/0", "redis://…"},
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis+cluster://:SECRET@h1:6379?addr=h2:6379&addr=h3:6379", "redis+cluster://:xxxxx@h1:6379?addr=h2:6379&addr=h3:6379"},
		{"postgres://u:SECRET@/db?host=/var/run/postgresql&search_path=a,b&password=SECRET", "postgres://u:xxxxx@/db?host=/var/run/postgresql&search_path=a,b&password=xxxxx"},
		{"/var/lib/gatehouse/gatehouse.db", "/var/lib/gatehouse/gatehouse.db"},
	} {
		got := RedactURL(tc.in)
		if got != tc.want || strings.Contains(got, "SECRET") {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
