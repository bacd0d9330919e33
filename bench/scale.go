package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/localserver"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/token"
)

// ScaleOptions size the scale run.
type ScaleOptions struct {
	Tokens      int // stored access tokens (1,000,000)
	Principals  int // active rate-limited principals (100,000)
	Samples     int // cold validations measured
	DatabaseURL string
	Out         io.Writer
}

// ScaleResult is what the scale run measured.
type ScaleResult struct {
	InsertTime       time.Duration
	ColdP50, ColdP99 time.Duration
	WarmP99          time.Duration
	RSSBytes         int64
}

// Scale stores opt.Tokens tokens, makes opt.Principals principals active in
// the rate limiter, then validates opt.Samples random tokens with a cold
// cache and reports the p99 and the process's resident memory.
func Scale(ctx context.Context, opt ScaleOptions) (ScaleResult, error) {
	var res ScaleResult
	dir, err := os.MkdirTemp("", "gatehouse-scale")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	cfg := localserver.Config(opt.DatabaseURL)
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = filepath.Join(dir, "scale.db")
	}
	cfg.AdminPassword = benchPassword
	// The tokens are stored in statements of thousands of rows, a bulk load
	// no request makes: the store's per-step deadline is a minute here.
	cfg.StoreTimeout = time.Minute
	limiter := ratelimit.NewMemory()
	defer limiter.Close()
	cfg.Limiter = limiter
	srv, err := localserver.Start(ctx, cfg)
	if err != nil {
		return res, err
	}
	defer srv.Close()
	svc := srv.Service
	var key []byte
	if cfg.TokenKey != "" {
		key = []byte(cfg.TokenKey)
	}
	digester := token.NewDigester(key) // the server's, for the tokens stored directly
	accounts, _, err := srv.Store.Accounts(ctx, gatehouse.Page{Limit: 1})
	if err != nil {
		return res, err
	}
	users, _, err := srv.Store.Users(ctx, accounts[0].ID, gatehouse.Page{Limit: 1})
	if err != nil {
		return res, err
	}
	user := users[0]

	// Store the tokens, keeping a random sample of their strings.
	start := time.Now()
	sample := make([]string, 0, opt.Samples)
	const chunk = 5000
	now := time.Now().UTC()
	for done := 0; done < opt.Tokens; done += chunk {
		batch := make([]*gatehouse.Token, 0, chunk)
		for i := 0; i < chunk && done+i < opt.Tokens; i++ {
			raw := token.New(token.AccessToken)
			id := gatehouse.NewID("tok")
			batch = append(batch, &gatehouse.Token{ID: id, AccountID: user.AccountID, UserID: user.ID, Kind: gatehouse.KindAccess,
				Hash: digester.Digest(raw), Method: gatehouse.MethodPassword, FamilyID: id,
				ExpiresAt: now.Add(24 * time.Hour), CreatedAt: now})
			if len(sample) < opt.Samples && rand.IntN(opt.Tokens) < opt.Samples*2 {
				sample = append(sample, raw)
			}
		}
		if err := srv.Store.CreateTokens(ctx, batch...); err != nil {
			return res, err
		}
	}
	res.InsertTime = time.Since(start)

	// Active principals in the limiter.
	lim := ratelimit.FromSettings(gatehouse.DefaultSettings().RateLimit)
	for i := 0; i < opt.Principals; i++ {
		key := "user:bench" + strconv.Itoa(i)
		for j := 0; j < 3; j++ {
			if _, err := limiter.Allow(ctx, user.AccountID, []string{key}, lim); err != nil {
				return res, err
			}
		}
	}

	measure := func() ([]time.Duration, error) {
		lat := make([]time.Duration, 0, len(sample))
		for _, raw := range sample {
			t0 := time.Now()
			if _, err := svc.AccessPrincipal(ctx, raw); err != nil {
				return nil, fmt.Errorf("validate: %w", err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		return lat, nil
	}
	cold, err := measure() // every sampled token is validated for the first time
	if err != nil {
		return res, err
	}
	warm, err := measure()
	if err != nil {
		return res, err
	}
	res.ColdP50, res.ColdP99 = cold[len(cold)/2], cold[len(cold)*99/100]
	res.WarmP99 = warm[len(warm)*99/100]
	runtime.GC()
	res.RSSBytes = rss()
	if opt.Out != nil {
		fmt.Fprintf(opt.Out, "stored tokens          %d (inserted in %s)\n", opt.Tokens, res.InsertTime.Round(time.Millisecond))
		fmt.Fprintf(opt.Out, "active principals      %d (limiter holds %d)\n", opt.Principals, limiter.Len())
		fmt.Fprintf(opt.Out, "cold validation        p50 %s, p99 %s (%d random tokens, cache empty)\n", res.ColdP50.Round(time.Microsecond), res.ColdP99.Round(time.Microsecond), len(cold))
		fmt.Fprintf(opt.Out, "warm validation        p99 %s\n", res.WarmP99.Round(time.Microsecond))
		fmt.Fprintf(opt.Out, "process RSS            %d MiB\n", res.RSSBytes>>20)
	}
	return res, nil
}

// rss returns the resident set size of this process, or 0 where /proc is
// missing.
func rss() int64 { return rssOf("/proc/self/status") }
