// Package bench measures Gatehouse end to end: a load generator drives a
// real server over loopback at a fixed concurrency for a fixed time, and
// every row is compared with a bare net/http handler measured in the same
// run. The load generator is built in (in this process) or wrk.
package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
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
	// CPU is the server's own CPU time across the row: the process's
	// (getrusage), less the built-in load generator's when it ran in the
	// process (see Run).
	CPU time.Duration
	// LoadCPU is the built-in load generator's CPU time, when it ran on
	// threads of its own (see Run).
	LoadCPU time.Duration
	// Skipped says why the row was not run (a scenario wrk cannot drive).
	Skipped string
	// Ratios are the row's throughput over the baseline's, one per round
	// (see Options.Rounds).
	Ratios []float64
}

// Ratio returns the row's throughput over base's: the mean of its
// rounds' ratios when it has them, else of the two results.
func (r Result) Ratio(base Result) float64 {
	if len(r.Ratios) == 0 {
		return r.RPS() / base.RPS()
	}
	var sum float64
	for _, x := range r.Ratios {
		sum += x
	}
	return sum / float64(len(r.Ratios))
}

// RPS returns the requests per second.
func (r Result) RPS() float64 { return float64(r.Requests) / r.Duration.Seconds() }

// CPUPerOp returns the server's CPU time per request.
func (r Result) CPUPerOp() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

// Request builds the next request of a worker; n counts that worker's
// requests. It must be safe to call from several goroutines.
type Request func(worker, n int) *http.Request

// Scenario is what a row sends: the requests, the status each must get,
// and, optionally, a function that sees each answer's body (a refresh
// chain feeds on it). Observe is called from the worker's goroutine.
// MaxConcurrency, when positive, caps the run's connections for this row.
type Scenario struct {
	Next           Request
	Want           int
	Observe        func(worker int, body []byte)
	MaxConcurrency int
}

// processCPU returns the CPU time (user and system) of the process, or of
// the calling thread with thread set.
func processCPU(thread bool) time.Duration {
	who := syscall.RUSAGE_SELF
	if thread {
		who = 1 // RUSAGE_THREAD
	}
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Run sends requests from concurrency workers for d and measures them. A
// response whose status is not want counts as an error. Each worker is an
// HTTP/1.1 client of its own on one kept-alive connection.
//
// The process's CPU time across the row is the server's and the load
// generator's; loadPerReq, the generator's per request (Main measures it
// once against the baseline), is taken off to leave the server's. With
// own set, each worker runs on an OS thread of its own, so that the
// generator's CPU time is known exactly (the sum of its threads') and
// left out too; that costs the generator a thread switch per request, so
// it is for calibration only.
func Run(ctx context.Context, name string, concurrency int, d time.Duration, sc Scenario, own bool, loadPerReq time.Duration) Result {
	var (
		total, errs atomic.Int64
		loadCPU     atomic.Int64
		wg          sync.WaitGroup
		mu          sync.Mutex
		lat         []time.Duration
	)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cpu0 := processCPU(false)
	// The round's clock starts with its deadline: it lasts at least d.
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(d))
	defer cancel()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var t0 time.Duration
			if own {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				t0 = processCPU(true)
			}
			c := &client{}
			defer c.close()
			local := make([]time.Duration, 0, 4096)
			for n := 0; ctx.Err() == nil; n++ {
				req := sc.Next(w, n)
				t := time.Now()
				status, body, err := c.do(req, sc.Observe != nil)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				if sc.Observe != nil {
					sc.Observe(w, body)
				}
				local = append(local, time.Since(t))
				total.Add(1)
				if status != sc.Want {
					errs.Add(1)
				}
			}
			if own {
				loadCPU.Add(int64(processCPU(true) - t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU(false) - cpu0
	runtime.ReadMemStats(&after)
	res := Result{Name: name, Requests: total.Load(), Errors: errs.Load(), Duration: elapsed, LoadCPU: time.Duration(loadCPU.Load())}
	res.CPU = max(cpu-res.LoadCPU-loadPerReq*time.Duration(res.Requests), 0)
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

// client is one worker's HTTP/1.1 connection, used from one goroutine.
type client struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

// do sends req and reads the answer, keeping its body when keep is set.
func (c *client) do(req *http.Request, keep bool) (int, []byte, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", req.URL.Host, 10*time.Second)
		if err != nil {
			return 0, nil, err
		}
		c.conn, c.br, c.bw = conn, bufio.NewReaderSize(conn, 16<<10), bufio.NewWriterSize(conn, 4<<10)
	}
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := req.Write(c.bw); err != nil {
		c.close()
		return 0, nil, err
	}
	if err := c.bw.Flush(); err != nil {
		c.close()
		return 0, nil, err
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		c.close()
		return 0, nil, err
	}
	var body []byte
	if keep {
		body, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return resp.StatusCode, body, err
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// NewClient returns a client that keeps one connection per worker (for
// setting a bench up).
func NewClient(concurrency int) *http.Client {
	tr := &http.Transport{MaxIdleConns: concurrency * 2, MaxIdleConnsPerHost: concurrency * 2, IdleConnTimeout: time.Minute}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
