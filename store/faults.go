package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	sqlitedriver "modernc.org/sqlite"
	sqlitelib "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse"
)

// errClosed is what a call on a closed store returns.
var errClosed = errors.New("store: closed")

// IsUnavailable reports whether err is a failure of a backing service
// rather than of the request or of Gatehouse: a lost connection (reset,
// refused, "conn closed", end of stream), a call that ran out of time or
// was interrupted, a full disk, a read-only or locked database, a server
// shutting down or out of resources. Those are answered 503 with
// Retry-After: the same request may work shortly. A *gatehouse.Error is
// never one (it already says what it is), nor is any other error (a bug,
// a corrupt database: 500).
func IsUnavailable(err error) bool {
	var ge *gatehouse.Error
	if err == nil || errors.As(err, &ge) {
		return false
	}
	var (
		ne net.Error
		se *sqlitedriver.Error
		pe *pgconn.PgError
		ce *pgconn.ConnectError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &ne), errors.As(err, &ce), pgconn.Timeout(err),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, errClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EIO):
		return true
	case errors.As(err, &se):
		switch se.Code() & 0xff {
		case sqlitelib.SQLITE_BUSY, sqlitelib.SQLITE_LOCKED, sqlitelib.SQLITE_NOMEM, sqlitelib.SQLITE_READONLY,
			sqlitelib.SQLITE_INTERRUPT, sqlitelib.SQLITE_IOERR, sqlitelib.SQLITE_FULL, sqlitelib.SQLITE_CANTOPEN,
			sqlitelib.SQLITE_PROTOCOL:
			return true
		}
		return false
	case errors.As(err, &pe):
		// Class 08: connection exception; 53: insufficient resources (disk
		// full, out of memory, too many connections); 57: operator
		// intervention (shutdown, query canceled); 40: transaction
		// rollback (serialization failure, deadlock); 25006: read-only
		// transaction (a standby, or default_transaction_read_only).
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53") ||
			strings.HasPrefix(pe.Code, "57") || strings.HasPrefix(pe.Code, "40") || pe.Code == "25006"
	}
	return false
}

// RolledBack reports whether err is PostgreSQL aborting a transaction for
// a conflict with another one (class 40: a deadlock, a serialization
// failure). Nothing of the transaction was written, and running it again
// may well succeed; it is one kind of IsUnavailable, for callers that can
// retry at once.
func RolledBack(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "40")
}

// conflicted reports whether err is PostgreSQL rolling a transaction back
// because it deadlocked with another (40P01) or could not be serialised
// with one (40001): nothing of it was written, and it may be run again at
// once. Unlike the rest of class 40 (RolledBack), which includes a commit
// whose outcome is unknown (40003), running it again is safe.
func conflicted(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// CheckWrite makes one small durable write (a row of meta that nothing
// else reads), so that the readiness check fails while the store cannot
// write — a full disk, a read-only file or database — even though it
// still answers reads.
func (s *Store) CheckWrite(ctx context.Context) error {
	return s.Update(ctx, func(t *Tx) error {
		_, err := t.exec(`INSERT INTO meta (key, value) VALUES ('readyz', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			time.Now().UTC().Format(time.RFC3339Nano))
		return err
	})
}
