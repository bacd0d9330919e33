package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/ratelimit"
)

// ceilingName is the name of the cluster runs' second reference row.
const ceilingName = "bare handler + cluster admission alone (ceiling)"

// startCeiling serves the cluster runs' ceiling: the baseline's handler
// with nothing added but a cluster node's admission — one request charged
// to an account's budget in Redis and the account's shard state confirmed,
// through cluster.Redis.Admit, batched per shard as a node batches it, on
// a client made as a node makes its own. No authentication, routing,
// headers or log line. A cluster row can come no nearer the baseline than
// this on the same machine: what separates it from this row is the node's
// own path, which a single node pays too. It returns the handler's URL
// and a function that stops it.
func startCeiling(ctx context.Context, redisURL, prefix string) (string, func(), error) {
	opt, err := cluster.ClientOption(redisURL)
	if err != nil {
		return "", nil, err
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return "", nil, fmt.Errorf("ceiling: redis: %w", err)
	}
	shared := cluster.NewRedis(cluster.WithTimeout(client, 5*time.Second), prefix)
	const account = "acc_bench_ceiling"
	st, err := shared.State(ctx, shared.Shard(account))
	if err != nil {
		client.Close()
		return "", nil, err
	}
	// The limits the bench gives its account's users: never binding.
	limits := ratelimit.Limits{Burst: 1_000_000, BurstWindow: time.Second, Daily: 100_000_000, DailyWindow: 24 * time.Hour}
	keys := []string{"usr_bench_ceiling"}
	body := []byte(`{"ok":true}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _, _, err := shared.Admit(r.Context(), &st, "", account, keys, limits)
		if err != nil || !d.Allowed {
			http.Error(w, fmt.Sprint("ceiling: not admitted: ", err), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		client.Close()
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/", func() {
		srv.Close()
		client.Close()
	}, nil
}
