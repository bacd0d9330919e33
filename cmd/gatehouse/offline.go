package main

import (
	"context"

	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
)

// openOffline opens the store at databaseURL (migrated) and, when redisURL
// is set, the cluster's Redis, and builds the service the commands that
// work on the store directly (recover, reapply-revocations) use, composed
// as a node's (server.OpenOffline). close releases all of it; it is nil
// when err is not.
func openOffline(ctx context.Context, databaseURL, redisURL, redisPrefix, tokenKey string) (svc *service.Service, close func(), err error) {
	cfg := server.DefaultConfig()
	cfg.DatabaseURL, cfg.RedisURL, cfg.RedisPrefix, cfg.TokenKey = databaseURL, redisURL, redisPrefix, tokenKey
	return server.OpenOffline(ctx, cfg)
}
