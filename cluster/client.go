package cluster

import (
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse/logx"
)

// ClientOption returns the client options for a Redis URL:
//
//	redis://[user:password@]host:port[/db]               one Redis
//	rediss://…                                           one Redis over TLS
//	redis+cluster://[user:password@]host:port[?addr=host:port&addr=…]
//	rediss+cluster://…                                   a Redis Cluster (over TLS)
//
// A Redis Cluster is found from any of its nodes: the URL's host and each
// addr are tried in turn at start. It has no databases (no /db). Redis
// being unreachable is noticed on use, not here: a single Redis is
// connected to lazily, and a Redis Cluster's seeds are tried when the
// client is made.
func ClientOption(url string) (rueidis.ClientOption, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return rueidis.ClientOption{}, fmt.Errorf("redis url: %q has no scheme: want redis://[user:password@]host:port/db", logx.RedactURL(url))
	}
	base, isCluster := strings.CutSuffix(scheme, "+cluster")
	if base != "redis" && base != "rediss" {
		return rueidis.ClientOption{}, fmt.Errorf("redis url: scheme %q: want redis, rediss, redis+cluster or rediss+cluster", scheme)
	}
	opt, err := rueidis.ParseURL(base + "://" + rest)
	if err != nil {
		// The parser's message quotes the URL, password and all.
		return opt, fmt.Errorf("redis url: %q is not a URL: want %s://[user:password@]host:port/db", logx.RedactURL(url), scheme)
	}
	if isCluster && opt.SelectDB != 0 {
		return opt, fmt.Errorf("redis url: a Redis Cluster has no database %d", opt.SelectDB)
	}
	// A single Redis is never mistaken for a cluster, and is connected to
	// whenever it answers.
	opt.ForceSingleClient = !isCluster
	opt.DisableCache = true
	opt.Dialer.Timeout = time.Second
	opt.ConnWriteTimeout = time.Second
	// A command that may be retried is retried once: a request waits for
	// an unreachable Redis no longer than it takes to find it so.
	opt.RetryDelay = func(attempts int, _ rueidis.Completed, _ error) time.Duration {
		if attempts > 1 {
			return -1
		}
		return 10 * time.Millisecond
	}
	return opt, nil
}
