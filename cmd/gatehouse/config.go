package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// configFlag is the flag (and configFileEnv its environment variable) that
// names a YAML file of settings.
const (
	configFlag    = "config"
	configFileEnv = "GATEHOUSE_CONFIG"
)

// envOfFlag returns the environment variable of a flag: the one its usage
// names as "($NAME)", else GATEHOUSE_ and the flag's name in upper case
// with "_" for "-".
func envOfFlag(f *flag.Flag) string {
	if m := envInUsage.FindStringSubmatch(f.Usage); m != nil {
		return m[1]
	}
	return "GATEHOUSE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
}

// inspectFlags, when set (by tests), is shown the flag set a config file
// is applied to: the tests build a file holding every setting from it.
var inspectFlags func(*flag.FlagSet)

var envInUsage = regexp.MustCompile(`\(\$([A-Z0-9_]+)\)\s*$`)

// applyConfigFile reads the YAML file at path, a mapping of flag names to
// values, and sets every flag it names that neither the command line nor
// the environment set: flags win over the environment, which wins over the
// file, which wins over the defaults. A value is a scalar, or a list of
// scalars that stands for their comma-separated form. An unknown or
// repeated name, a nested mapping, a second document, or a value its flag
// refuses is an error naming the file and the line.
func applyConfigFile(fs *flag.FlagSet, path string, getenv func(string) string) error {
	if inspectFlags != nil {
		inspectFlags(fs)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("config %s: line %d: %s", path, line, fmt.Sprintf(format, args...))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file sets nothing
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fail(extra.Line, "a second YAML document; put every setting in one")
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fail(root.Line, "the file must be a mapping of setting names to values, such as \"addr: 127.0.0.1:8080\"")
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		if k.Kind != yaml.ScalarNode {
			return fail(k.Line, "a setting name must be a plain word")
		}
		f := fs.Lookup(name)
		if f == nil || name == configFlag {
			return fail(k.Line, "unknown setting %q (the settings are the flags of \"gatehouse serve -h\", without the dashes)", name)
		}
		if prev, dup := seen[name]; dup {
			return fail(k.Line, "%q is set again (first on line %d)", name, prev)
		}
		seen[name] = k.Line
		value, err := configValue(v)
		if err != nil {
			return fail(v.Line, "%s: %v", name, err)
		}
		if onCommandLine[name] || getenv(envOfFlag(f)) != "" {
			// Not applied, but checked all the same: the file must not
			// fail the day the flag or variable over it goes.
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				if _, err := strconv.ParseBool(value); err != nil {
					return fail(v.Line, "%s: %q is not true or false", name, value)
				}
			}
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fail(v.Line, "%s: %v", name, err)
		}
	}
	return nil
}

// configValue returns the flag value a YAML value stands for.
func configValue(v *yaml.Node) (string, error) {
	switch v.Kind {
	case yaml.AliasNode:
		return configValue(v.Alias)
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return "", nil
		}
		return v.Value, nil
	case yaml.SequenceNode:
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
				return "", errors.New("a list may hold only plain values")
			}
			items = append(items, it.Value)
		}
		return strings.Join(items, ","), nil
	}
	return "", errors.New("a value must be a plain value or a list, not a mapping")
}
