package main

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

// openOffline opens the store at databaseURL (migrated) and, when redisURL
// is set, the cluster's Redis, and builds the service the commands that
// work on the store directly (recover, reapply-revocations) use, so that
// every change they make reaches running nodes as a server's would. close
// releases all of it; it is nil when err is not.
func openOffline(ctx context.Context, databaseURL, redisURL, redisPrefix, tokenKey string) (svc *service.Service, close func(), err error) {
	st, err := store.Open(ctx, databaseURL)
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
	if redisURL != "" {
		opt, err := cluster.ClientOption(redisURL)
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
		shared = cluster.NewRedis(client, redisPrefix)
	}
	var key []byte
	if tokenKey != "" {
		key = []byte(tokenKey)
	}
	svc = service.New(service.Config{Store: st, Passwords: password.New(password.DefaultParams),
		Digester: token.NewDigester(key), Cluster: shared})
	return svc, close, nil
}
