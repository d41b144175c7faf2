package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/connectors"
)

// newMappingCmd is `scimbridge mapping`, whose one subcommand `test` shows what the mapping makes
// of an entry without touching the target.
func newMappingCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mapping",
		Short: "Inspect the attribute mapping and scope",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newMappingTestCmd())
	return cmd
}

type mappingTestFlags struct {
	config, entryFile, id, kind, output string
}

func newMappingTestCmd() *cobra.Command {
	var f mappingTestFlags
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Show an entry, what the mapping makes of it, and any problem",
		Long: `Compiles the configured mapping and scope and shows, for one entry, the source attributes,
whether it is in scope and why, the user or group that would be sent, and every problem.

With --id the source is read (the target is never touched) and the entry with that id, or with
that key (DN, userName, email), is shown with references and nested groups resolved against the
whole directory. With --source-entry the entry comes from a JSON file instead
({"id": ..., "keys": [...], "attributes": {"name": ["value"]}, "members": [...]}), mapped on its
own: references to other entries do not resolve.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMappingTest(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", defaultConfig, "config file")
	fl.StringVar(&f.entryFile, "source-entry", "", "JSON file holding one source entry")
	fl.StringVar(&f.id, "id", "", "id or key of an entry of the source")
	fl.StringVar(&f.kind, "kind", "user", "with --source-entry: user or group")
	fl.StringVarP(&f.output, "output", "o", "text", "text or json")
	return cmd
}

func runMappingTest(cmd *cobra.Command, f mappingTestFlags) error {
	if (f.entryFile == "") == (f.id == "") {
		return &codeError{exitError, errors.New("mapping test: give exactly one of --id and --source-entry")}
	}
	if f.output != "text" && f.output != "json" {
		return &codeError{exitError, fmt.Errorf("mapping test: --output %q: use text or json", f.output)}
	}
	if f.kind != "user" && f.kind != "group" {
		return &codeError{exitError, fmt.Errorf("mapping test: --kind %q: use user or group", f.kind)}
	}
	cfg, err := config.Load(f.config)
	if err != nil {
		return err
	}
	m, err := cfg.CompileMapping()
	if err != nil {
		return err
	}
	var (
		d  *connectors.Directory
		id = f.id
	)
	if f.entryFile != "" {
		raw, err := os.ReadFile(f.entryFile)
		if err != nil {
			return fmt.Errorf("mapping test: %w", err)
		}
		var e connectors.Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("mapping test: decode %s: %w", f.entryFile, err)
		}
		if e.ID == "" {
			return fmt.Errorf("mapping test: %s: the entry has no id", f.entryFile)
		}
		d, id = &connectors.Directory{}, e.ID
		if f.kind == "group" {
			d.Groups = []connectors.Entry{e}
		} else {
			d.Users = []connectors.Entry{e}
		}
	} else {
		log := newLogger(cmd.ErrOrStderr(), cfg.Log, false)
		src, err := cfg.OpenSource(log)
		if err != nil {
			return err
		}
		defer src.Close()
		if d, err = src.Read(cmd.Context()); err != nil {
			return err
		}
	}
	ex, err := m.Explain(d, id)
	if err != nil {
		return fmt.Errorf("mapping test: %w", err)
	}
	out := cmd.OutOrStdout()
	if f.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(ex)
	}
	fmt.Fprint(out, ex.String())
	fmt.Fprintln(out, "  source attributes:")
	for _, line := range attributeLines(ex.Entry) {
		fmt.Fprintln(out, "    "+line)
	}
	return nil
}

// attributeLines lists an entry's keys, attributes and members, sorted, one per line.
func attributeLines(e connectors.Entry) []string {
	var lines []string
	for _, k := range e.Keys {
		lines = append(lines, fmt.Sprintf("key: %s", k))
	}
	names := make([]string, 0, len(e.Attributes))
	for n := range e.Attributes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		b, _ := json.Marshal(e.Attributes[n])
		lines = append(lines, fmt.Sprintf("%s: %s", n, b))
	}
	if len(e.Members) > 0 {
		b, _ := json.Marshal(e.Members)
		lines = append(lines, fmt.Sprintf("members: %s", b))
	}
	return lines
}
