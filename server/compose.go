package server

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"

	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// tokenKey is the server key (--token-key) as bytes; nil without one.
func (c Config) tokenKey() []byte {
	if c.TokenKey == "" {
		return nil
	}
	return []byte(c.TokenKey)
}

// serviceConfig is what every service on the store st needs, a node's and
// the offline commands' alike: the store, the password hasher, the token
// digests under the server key, the cluster's shared state (nil: none)
// and the deployment's token prefix. Open adds what only a serving node
// has.
func (c Config) serviceConfig(st *store.Store, shared service.Cluster) service.Config {
	params := c.PasswordParams
	if params == (password.Params{}) {
		params = password.DefaultParams
	}
	return service.Config{Store: st, Passwords: password.New(params), Digester: token.NewDigester(c.tokenKey()), Cluster: shared,
		TokenPrefix: c.TokenPrefix, Logger: c.Logger}
}

// OpenOffline opens what the commands that work on the store directly
// (recover, reapply-revocations) need, composed as Open composes a node:
// the store at cfg.DatabaseURL (one a server made: store.OpenExisting;
// migrated to this release), the cluster's Redis when
// cfg.RedisURL names one, and the service on them, so that every change
// they make reaches running nodes as a node's would. close releases all
// of it; it is nil when err is not.
func OpenOffline(ctx context.Context, cfg Config) (svc *service.Service, close func(), err error) {
	if cfg.RedisURL != "" {
		// A bad URL is refused before the store is looked for.
		if _, err := cluster.ClientOption(cfg.RedisURL); err != nil {
			return nil, nil, err
		}
	}
	st, err := store.OpenExisting(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, nil, err
	}
	closers := []func(){func() { st.Close() }}
	close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	var shared service.Cluster
	if cfg.RedisURL != "" {
		opt, err := cluster.ClientOption(cfg.RedisURL)
		if err != nil {
			close()
			return nil, nil, err
		}
		client, err := rueidis.NewClient(opt)
		if err != nil {
			if client != nil {
				client.Close()
			}
			close()
			return nil, nil, fmt.Errorf("redis: %w", err)
		}
		closers = append(closers, client.Close)
		shared = cluster.NewRedis(client, cfg.RedisPrefix)
	}
	return service.New(cfg.serviceConfig(st, shared)), close, nil
}
