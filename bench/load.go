// Package bench measures Gatehouse end to end: a built-in HTTP load
// generator drives a real server over loopback at a fixed concurrency for a
// fixed time, and every row is compared with a bare net/http handler
// measured in the same run.
package bench

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one measured row.
type Result struct {
	Name        string
	Requests    int64
	Errors      int64
	Duration    time.Duration
	P50, P99    time.Duration
	AllocsPerOp float64
}

// RPS returns the requests per second.
func (r Result) RPS() float64 { return float64(r.Requests) / r.Duration.Seconds() }

// Request builds the next request of a worker; n counts that worker's
// requests. It must be safe to call from several goroutines.
type Request func(worker, n int) *http.Request

// Scenario is what a row sends: the requests, the status each must get,
// and, optionally, a function that sees each answer's body (a refresh
// chain feeds on it). Observe is called from the worker's goroutine.
type Scenario struct {
	Next    Request
	Want    int
	Observe func(worker int, body []byte)
}

// Run sends requests from concurrency workers for d and measures them. A
// response whose status is not want counts as an error.
func Run(ctx context.Context, name string, client *http.Client, concurrency int, d time.Duration, sc Scenario) Result {
	var (
		total, errs atomic.Int64
		wg          sync.WaitGroup
		mu          sync.Mutex
		lat         []time.Duration
	)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for n := 0; ctx.Err() == nil; n++ {
				req := sc.Next(w, n)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				if sc.Observe != nil {
					body, _ := io.ReadAll(resp.Body)
					sc.Observe(w, body)
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
				}
				resp.Body.Close()
				local = append(local, time.Since(t0))
				total.Add(1)
				if resp.StatusCode != sc.Want {
					errs.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	res := Result{Name: name, Requests: total.Load(), Errors: errs.Load(), Duration: elapsed}
	if res.Requests > 0 {
		res.AllocsPerOp = float64(after.Mallocs-before.Mallocs) / float64(res.Requests)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		res.P50 = lat[len(lat)/2]
		res.P99 = lat[len(lat)*99/100]
	}
	return res
}

// NewClient returns a client that keeps one connection per worker.
func NewClient(concurrency int) *http.Client {
	tr := &http.Transport{MaxIdleConns: concurrency * 2, MaxIdleConnsPerHost: concurrency * 2, IdleConnTimeout: time.Minute}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
