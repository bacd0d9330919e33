package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// runRecover is the break-glass command: it works on the store directly,
// whether or not a server is running, and makes the user with --email an
// active operator-admin with a new password (see service.Recover).
func runRecover(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("recover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// The flags' defaults are the built-in ones, which the usage text
	// prints; the environment's values (secrets among them) come after.
	fs.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL, "SQLite file path or postgres:// URL ($GATEHOUSE_DATABASE_URL)")
	fs.StringVar(&cfg.RedisURL, "redis-url", cfg.RedisURL, "the cluster's Redis, told of the change so every node drops its cache ($GATEHOUSE_REDIS_URL)")
	if v := getenv("GATEHOUSE_DATABASE_URL"); v != "" {
		cfg.DatabaseURL = v
	}
	if v := getenv("GATEHOUSE_REDIS_URL"); v != "" {
		cfg.RedisURL = v
	}
	cfg.RedisPrefix = getenv("GATEHOUSE_REDIS_PREFIX")
	if v := getenv("GATEHOUSE_TOKEN_KEY"); v != "" {
		cfg.TokenKey = v
	}
	email := fs.String("email", "", "e-mail of the user to make an active operator-admin (created in the default account if absent)")
	fromStdin := fs.Bool("password-stdin", false, "read the new password from standard input instead of generating one")
	configPath := getenv(configFileEnv)
	fs.StringVar(&configPath, configFlag, configPath, "the YAML settings file of gatehouse serve, for its database-url, redis-url, redis-prefix and token-key ($"+configFileEnv+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if configPath != "" {
		// The file's settings under the environment's, as serve reads
		// them; this command's flags win over both.
		file, _, err := parseConfig("recover", []string{"--" + configFlag, configPath}, getenv, stderr)
		if err != nil {
			return err
		}
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if !given["database-url"] {
			cfg.DatabaseURL = file.DatabaseURL
		}
		if !given["redis-url"] {
			cfg.RedisURL = file.RedisURL
		}
		cfg.RedisPrefix, cfg.TokenKey = file.RedisPrefix, file.TokenKey
	}
	if *email == "" {
		return errors.New("recover: --email is required")
	}
	pw := ""
	if *fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("recover: read password: %w", err)
		}
		if pw = strings.TrimRight(line, "\r\n"); pw == "" {
			return errors.New("recover: no password on standard input")
		}
	} else {
		pw = rand.Text()
	}

	svc, closeAll, err := openOffline(ctx, cfg.DatabaseURL, cfg.RedisURL, cfg.RedisPrefix, cfg.TokenKey)
	if err != nil {
		return err
	}
	defer closeAll()
	u, err := svc.Recover(ctx, *email, pw)
	if err != nil {
		return fmt.Errorf("recover: %s", errorText(err))
	}
	fmt.Fprintf(stdout, "%s is now an active operator-admin of account %s; their sessions and password tokens are ended.\n", u.Email, u.AccountID)
	if !*fromStdin {
		fmt.Fprintf(stdout, "New password (shown once):\n\n    %s\n\n", pw)
	}
	return nil
}

// errorText is the message of a service error: the safe message of a
// gatehouse.Error, or the error itself (an operator at a terminal may see
// technical detail).
func errorText(err error) string {
	if code := gatehouse.ErrorCode(err); code != gatehouse.EInternal {
		return gatehouse.ErrorMessage(err)
	}
	return err.Error()
}
