package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
)

// TestSyncLeftOutExitCode: a record whose userName a hand-made user holds is left out. The full
// run and the trusted run that follows both say so, exit 5 with the hint, and write nothing; a
// dry run with the hinted adopt mode shows the adopt line; adopting brings the target in step.
func TestSyncLeftOutExitCode(t *testing.T) {
	b := newRig(t, "sync: {full_reconcile_interval: 1h}\n")
	b.people(3, nil)
	c, err := client.New(client.Config{BaseURL: b.srv.URL, Token: func(context.Context) (string, error) { return b.srv.Token, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateUser(context.Background(), scim.User{ExternalID: "by-hand-1", UserName: "p001@example.com", DisplayName: "P",
		GivenName: "P", FamilyName: "N001", Email: "p001@example.com", Active: true}, ""); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := b.sync()
	if code != exitLeftOut || strings.Contains(out, "The target matches the source") || !strings.Contains(out, "1 record is left out") ||
		!strings.Contains(errOut, "sync.adopt: name would take them over") {
		t.Fatalf("full run: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = b.sync("--output", "json")
	var res struct {
		ExitCode   int            `json:"exitCode"`
		LeftOut    int            `json:"leftOut"`
		TargetRead bool           `json:"targetRead"`
		Requests   map[string]int `json:"requests"`
		Clashes    []struct {
			ExternalID string `json:"externalId"`
			Adopt      string `json:"adopt"`
		} `json:"clashes"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if code != exitLeftOut || res.ExitCode != exitLeftOut || res.LeftOut != 1 || res.TargetRead || sumCounts(res.Requests) != 0 ||
		len(res.Clashes) != 1 || res.Clashes[0].ExternalID != "p-001" || res.Clashes[0].Adopt != "name" {
		t.Fatalf("trusted run: exit %d %+v\n%s", code, res, errOut)
	}
	adopt := targetConfig(t, b.dir, b.srv, "sync: {full_reconcile_interval: 1h, adopt: name}\n")
	out, _, code = runEnv(t, b.dir, b.env, "sync", "-c", adopt, "--dry-run")
	if code != exitChanges || !strings.Contains(out, `~ user "p001@example.com" (p-001) [adopt: matched by userName]`) {
		t.Fatalf("dry run with adopt: name: exit %d\n%s", code, out)
	}
	if out, errOut, code = runEnv(t, b.dir, b.env, "sync", "-c", adopt); code != exitOK || !strings.Contains(out, "1 adopted") {
		t.Fatalf("adoption: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, _, code = b.sync("--full"); code != exitOK || !strings.Contains(out, "No changes. The target matches the source") {
		t.Fatalf("after adoption: exit %d\n%s", code, out)
	}
	b.checkUnmanaged()
}
