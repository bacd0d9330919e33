package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse/token"
)

// tokenPatterns prints, one kind a line, the kind's name and the regular
// expression a secret scanner should use for the secrets this deployment
// issues (--token-prefix or GATEHOUSE_TOKEN_PREFIX; none: the default
// prefixes), or ready Gitleaks and TruffleHog rules for them (--format).
func tokenPatterns(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token-patterns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prefix := fs.String("token-prefix", getenv("GATEHOUSE_TOKEN_PREFIX"), "deployment name new secrets start with (as for serve)")
	format := fs.String("format", "text", "text (kind and regular expression a line), gitleaks (TOML) or trufflehog (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *prefix != "" {
		if err := token.CheckDeployment(*prefix); err != nil {
			return err
		}
	}
	switch *format {
	case "text":
		for _, line := range token.Patterns(*prefix) {
			fmt.Fprintln(stdout, line)
		}
	case "gitleaks":
		fmt.Fprint(stdout, token.Gitleaks(*prefix))
	case "trufflehog":
		fmt.Fprint(stdout, token.TruffleHog(*prefix))
	default:
		return fmt.Errorf("token-patterns: --format %q: want text, gitleaks or trufflehog", *format)
	}
	return nil
}
