package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
)

// runEmulator starts `scimbridge emulator` and returns the printed settings and a stop function.
func runEmulator(t *testing.T, args ...string) (map[string]string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	cmd := newRootCmd()
	cmd.SetArgs(append([]string{"emulator", "--listen", "127.0.0.1:0"}, args...))
	cmd.SetOut(pw)
	cmd.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() {
		done <- cmd.ExecuteContext(ctx)
		pw.Close()
	}()
	settings := map[string]string{}
	sc := bufio.NewScanner(pr)
	for settings["stats"] == "" && sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		settings[strings.TrimSpace(k)] = strings.Fields(strings.TrimSpace(v))[0]
	}
	go io.Copy(io.Discard, pr)
	if settings["stats"] == "" {
		cancel()
		t.Fatalf("emulator printed %v; error %v", settings, <-done)
	}
	return settings, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("emulator command: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("emulator did not stop on cancel")
		}
	}
}

func scimDo(t *testing.T, method, url, token, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestEmulatorCommandKeepsDataAcrossRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "emu.db")
	first, stop := runEmulator(t, "--data", data, "--tenant", "tenant-x")
	if !strings.HasSuffix(first["SCIM endpoint"], "/tenant-x/scim/v2") || first["SCIM token"] == "" ||
		first["identity store id"] == "" || !strings.HasSuffix(first["identitystore endpoint"], "/identitystore") {
		t.Fatalf("printed settings = %v", first)
	}
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ivy","displayName":"Ivy","name":{"givenName":"I","familyName":"V"}}`
	if s := scimDo(t, "POST", first["SCIM endpoint"]+"/Users", first["SCIM token"], body); s != 201 {
		t.Fatalf("create user: status %d", s)
	}
	stop()

	second, stop2 := runEmulator(t, "--data", data)
	defer stop2()
	if second["SCIM token"] != first["SCIM token"] || !strings.HasSuffix(second["SCIM endpoint"], "/tenant-x/scim/v2") ||
		second["identity store id"] != first["identity store id"] {
		t.Errorf("restart changed settings: %v vs %v", second, first)
	}
	if s := scimDo(t, "POST", second["SCIM endpoint"]+"/Users", second["SCIM token"], body); s != 409 {
		t.Errorf("user lost across restart: create again gave %d, want 409", s)
	}
}

func TestEmulatorCommandServesAccess(t *testing.T) {
	data := filepath.Join(t.TempDir(), "emu.db")
	listAccounts := func(settings map[string]string) []string {
		t.Helper()
		cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}
		org := organizations.NewFromConfig(cfg, func(o *organizations.Options) { o.BaseEndpoint = aws.String(settings["organizations endpoint"]) })
		sso := ssoadmin.NewFromConfig(cfg, func(o *ssoadmin.Options) { o.BaseEndpoint = aws.String(settings["sso-admin endpoint"]) })
		ctx := context.Background()
		inst, err := sso.ListInstances(ctx, &ssoadmin.ListInstancesInput{})
		if err != nil || len(inst.Instances) != 1 || aws.ToString(inst.Instances[0].InstanceArn) != settings["instance"] ||
			aws.ToString(inst.Instances[0].IdentityStoreId) != settings["identity store id"] {
			t.Fatalf("ListInstances = %+v, %v; want the printed instance %s of %s", inst, err, settings["instance"], settings["identity store id"])
		}
		var ids []string
		p := organizations.NewListAccountsPaginator(org, &organizations.ListAccountsInput{})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListAccounts: %v", err)
			}
			for _, a := range page.Accounts {
				ids = append(ids, aws.ToString(a.Id))
			}
		}
		return ids
	}
	first, stop := runEmulator(t, "--data", data, "--accounts", "4", "--admin-rps", "-1")
	firstIDs := listAccounts(first)
	stop()
	if len(firstIDs) != 4 {
		t.Fatalf("--accounts 4 made %d accounts: %v", len(firstIDs), firstIDs)
	}
	second, stop2 := runEmulator(t, "--data", data, "--accounts", "9")
	defer stop2()
	if got := listAccounts(second); strings.Join(got, ",") != strings.Join(firstIDs, ",") {
		t.Errorf("accounts after a restart on the same data file = %v, want the first run's %v", got, firstIDs)
	}
}

func TestEmbeddedExposesAccessEndpoints(t *testing.T) {
	emb, _, _, err := startEmbedded(filepath.Join(t.TempDir(), "data", "ic.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("startEmbedded: %v", err)
	}
	defer emb.close()
	ssoURL, orgURL := emb.accessEndpoints()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("embedded", "embedded", "")}
	sso := ssoadmin.NewFromConfig(cfg, func(o *ssoadmin.Options) { o.BaseEndpoint = aws.String(ssoURL) })
	org := organizations.NewFromConfig(cfg, func(o *organizations.Options) { o.BaseEndpoint = aws.String(orgURL) })
	inst, err := sso.ListInstances(context.Background(), &ssoadmin.ListInstancesInput{})
	if err != nil || len(inst.Instances) != 1 || aws.ToString(inst.Instances[0].IdentityStoreId) != emb.IdentityStoreID() {
		t.Errorf("ListInstances on the embedded sso-admin = %+v, %v; want its one instance", inst, err)
	}
	desc, err := org.DescribeOrganization(context.Background(), &organizations.DescribeOrganizationInput{})
	if err != nil || aws.ToString(desc.Organization.MasterAccountId) != emb.AccountIDs()[0] {
		t.Errorf("DescribeOrganization on the embedded organizations = %+v, %v; want management account %s", desc, err, emb.AccountIDs()[0])
	}
}
