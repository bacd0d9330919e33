package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// RunWrk drives a row with wrk (at path) instead of the built-in load
// generator: two threads, concurrency connections, for d, every request
// the scenario's first one. The server's CPU time is then the whole
// process's. A scenario that must see each answer (Observe) cannot be
// driven by wrk and is skipped; any answer other than 2xx or 3xx counts as
// an error.
func RunWrk(ctx context.Context, wrk, name string, concurrency int, d time.Duration, sc Scenario) (Result, error) {
	if sc.Observe != nil {
		return Result{Name: name, Skipped: "each answer feeds the next request"}, nil
	}
	req := sc.Next(0, 0)
	var script strings.Builder
	fmt.Fprintf(&script, "wrk.method = %s\n", luaString(req.Method))
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return Result{}, err
		}
		fmt.Fprintf(&script, "wrk.body = %s\n", luaString(string(body)))
	}
	for name, vs := range req.Header {
		fmt.Fprintf(&script, "wrk.headers[%s] = %s\n", luaString(name), luaString(vs[0]))
	}
	dir, err := os.MkdirTemp("", "gatehouse-wrk")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "row.lua")
	if err := os.WriteFile(file, []byte(script.String()), 0o600); err != nil {
		return Result{}, err
	}
	threads := min(2, concurrency)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cpu0 := processCPU(false)
	out, err := exec.CommandContext(ctx, wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(concurrency),
		"-d", strconv.Itoa(max(int(d/time.Second), 1))+"s", "--latency", "-s", file, req.URL.String()).Output()
	cpu := processCPU(false) - cpu0
	runtime.ReadMemStats(&after)
	if err != nil {
		return Result{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	res, err := parseWrk(out)
	if err != nil {
		return Result{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	res.Name, res.CPU = name, cpu
	if res.Requests > 0 {
		res.AllocsPerOp = float64(after.Mallocs-before.Mallocs) / float64(res.Requests)
	}
	return res, nil
}

// luaString quotes s as a Lua string literal.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// parseWrk reads what wrk --latency prints: the request count and time,
// the 50th and 99th percentiles, and the non-2xx/3xx answers and socket
// errors.
func parseWrk(out []byte) (Result, error) {
	var res Result
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			res.Requests, _ = strconv.ParseInt(f[0], 10, 64)
			res.Duration, _ = time.ParseDuration(strings.TrimSuffix(f[3], ","))
		case len(f) == 2 && f[0] == "50%":
			res.P50, _ = time.ParseDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			res.P99, _ = time.ParseDuration(f[1])
		case len(f) == 5 && f[0] == "Non-2xx":
			n, _ := strconv.ParseInt(f[4], 10, 64)
			res.Errors += n
		case len(f) > 2 && f[0] == "Socket" && f[1] == "errors:":
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				res.Errors += n
			}
		}
	}
	if res.Requests == 0 || res.Duration == 0 {
		return res, fmt.Errorf("no requests counted")
	}
	return res, nil
}
