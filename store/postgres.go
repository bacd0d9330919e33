package store

import (
	"context"
	"errors"
)

// openPostgres is where the PostgreSQL dialect plugs in.
func openPostgres(ctx context.Context, url string) (*Store, error) {
	return nil, errors.New("store: PostgreSQL is not supported by this build yet")
}
