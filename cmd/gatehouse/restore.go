package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
)

// storeFlags are the settings of the commands that work on the store
// directly: its URL, and the cluster's Redis to tell of revoking changes.
type storeFlags struct {
	databaseURL, redisURL, redisPrefix, tokenKey string
}

// register defines the flags with their built-in defaults — what the usage
// text prints, never a secret from the environment — then takes the
// environment's values, which flags given on the command line override.
func (f *storeFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&f.databaseURL, "database-url", store.DefaultURL, "SQLite file path or postgres:// URL ($GATEHOUSE_DATABASE_URL)")
	fs.StringVar(&f.redisURL, "redis-url", "", "the cluster's Redis, told of each change so every node drops its cache ($GATEHOUSE_REDIS_URL)")
	if v := getenv("GATEHOUSE_DATABASE_URL"); v != "" {
		f.databaseURL = v
	}
	f.redisURL = getenv("GATEHOUSE_REDIS_URL")
	f.redisPrefix, f.tokenKey = getenv("GATEHOUSE_REDIS_PREFIX"), getenv("GATEHOUSE_TOKEN_KEY")
}

// since reads a --since value: RFC 3339, or empty for the beginning.
func since(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, fmt.Errorf("--since %q is not an RFC 3339 time such as 2026-01-31T04:00:00Z", s)
	}
	return t, nil
}

// runAuditExport writes every audit entry of every account made after
// --since to standard output as JSON lines (one gatehouse.AuditEntry a
// line, oldest first): the input of reapply-revocations. Run it against
// the live database before a restore replaces it.
func runAuditExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit-export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f storeFlags
	f.register(fs, getenv)
	from := fs.String("since", "", "export only entries made after this RFC 3339 time (e.g. the backup's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	t, err := since(*from)
	if err != nil {
		return err
	}
	st, err := store.OpenExisting(ctx, f.databaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	if err := st.AuditSince(ctx, t, func(e *gatehouse.AuditEntry) error { return enc.Encode(e) }); err != nil {
		return err
	}
	return w.Flush()
}

// runReapplyRevocations re-applies, to a restored store, the revocations
// an exported audit log (--audit FILE, JSON lines as audit-export or the
// admin UI's JSON export write them) recorded after --since, the backup's
// time (see service.ReapplyRevocations).
func runReapplyRevocations(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reapply-revocations", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f storeFlags
	f.register(fs, getenv)
	file := fs.String("audit", "", "the exported audit log: JSON lines, one entry a line (- for standard input)")
	from := fs.String("since", "", "the backup's time (RFC 3339): entries at or before it are already in the backup")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("reapply-revocations: --audit FILE is required")
	}
	t, err := since(*from)
	if err != nil {
		return err
	}
	entries, err := readAudit(*file)
	if err != nil {
		return err
	}
	svc, closeAll, err := openOffline(ctx, f.databaseURL, f.redisURL, f.redisPrefix, f.tokenKey)
	if err != nil {
		return err
	}
	defer closeAll()
	out, err := svc.ReapplyRevocations(ctx, entries, t)
	if err != nil {
		return fmt.Errorf("reapply-revocations: %s", errorText(err))
	}
	n := 0
	for _, a := range service.RevokingActions() {
		if out.Applied[a] > 0 {
			fmt.Fprintf(stdout, "%-28s %d\n", a, out.Applied[a])
			n += out.Applied[a]
		}
	}
	fmt.Fprintf(stdout, "%d revocations re-applied; %d entries passed over (not revoking, before --since, or nothing left to revoke).\n", n, out.Skipped)
	return nil
}

// readAudit reads JSON lines of audit entries from path ("-": standard
// input).
func readAudit(path string) ([]*gatehouse.AuditEntry, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var out []*gatehouse.AuditEntry
	dec := json.NewDecoder(r)
	for {
		var e gatehouse.AuditEntry
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", path, len(out)+1, err)
		}
		out = append(out, &e)
	}
}
