package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckURL is the default probe address: the service's listen address from
// SCIMBRIDGE_SERVICE_LISTEN when it is set (a wildcard host probed on 127.0.0.1), else the
// service's default listener.
func healthcheckURL(lookup func(string) (string, bool)) string {
	host, port := "127.0.0.1", "8080"
	if l, ok := lookup("SCIMBRIDGE_SERVICE_LISTEN"); ok && l != "" {
		if h, p, err := net.SplitHostPort(l); err == nil {
			if h != "" && h != "0.0.0.0" && h != "::" {
				host = h
			}
			port = p
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz"
}

// newHealthcheckCmd is the container health check: the runtime image has no shell and no curl,
// so the binary probes its own service. Exit 0 on HTTP 200, 1 on anything else.
func newHealthcheckCmd() *cobra.Command {
	var (
		url     string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Probe a running `scimbridge serve` (exit 0 when /healthz answers 200)",
		Long: "Probe a running `scimbridge serve` over HTTP: exit 0 when the URL answers 200, 1 otherwise.\n" +
			"For a container HEALTHCHECK or an exec probe where the image has no shell.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return probe(cmd.Context(), url, timeout, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&url, "url", healthcheckURL(os.LookupEnv), "the URL to GET")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	return cmd
}

// probe GETs url and fails unless it answers 200 within timeout.
func probe(ctx context.Context, url string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	req.Header.Set("User-Agent", "scimbridge-healthcheck/"+version)
	// No proxy: the probe is for this host's own service.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s", url, resp.Status)
	}
	_, err = fmt.Fprintf(out, "ok: GET %s: %s\n", url, resp.Status)
	return err
}
