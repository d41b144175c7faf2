package client_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
)

func emuClient(t *testing.T, s *emulatortest.Server, mod func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{
		BaseURL: s.URL,
		Token:   func(context.Context) (string, error) { return s.Token, nil },
		Profile: client.IdentityCenter,
		Retry:   client.RetryPolicy{MaxAttempts: 6, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func emuReader(t *testing.T, s *emulatortest.Server, lim *client.Limiter) *client.IdentityStoreReader {
	t.Helper()
	r, err := client.NewIdentityStoreReader(context.Background(), client.IdentityStoreConfig{
		StoreID: s.StoreID, Region: "eu-west-1", Endpoint: s.IdentityStoreEndpoint, Limiter: lim,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retry:       client.RetryPolicy{MaxAttempts: 6, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEmulatorRoundTrip writes users (every attribute, managers), groups and memberships to the
// emulator, then reads the state back through SCIM and through identitystore: both reads must
// equal each other and what was written, so a second run would find nothing to change.
func TestEmulatorRoundTrip(t *testing.T) {
	s := emulatortest.Start(t, emulator.Options{})
	c := emuClient(t, s, nil)
	ctx := context.Background()

	boss := fullUser()
	boss.Enterprise.Manager = ""
	bossID, err := c.CreateUser(ctx, boss, "")
	if err != nil {
		t.Fatalf("create boss: %v", err)
	}
	want := map[string]scim.User{bossID: boss}
	var ids []string
	for i := range 130 {
		u := scim.User{ExternalID: fmt.Sprintf("e%03d", i), UserName: fmt.Sprintf("user%03d@example.com", i),
			DisplayName: fmt.Sprint("User ", i), GivenName: "User", FamilyName: fmt.Sprint(i),
			Email: fmt.Sprintf("user%03d@example.com", i), EmailType: "work", Active: i%10 != 0}
		if i%3 == 0 {
			u.Enterprise = scim.Enterprise{Department: "Eng", Manager: "ignored-source-id"}
		}
		mgr := ""
		if i%3 == 0 {
			mgr = bossID
		}
		id, err := c.CreateUser(ctx, u, mgr)
		if err != nil {
			t.Fatalf("create user %d: %v", i, err)
		}
		u.Enterprise.Manager = mgr
		want[id] = u
		ids = append(ids, id)
	}
	if err := c.SetUserActive(ctx, ids[5], false); err != nil {
		t.Fatal(err)
	}
	u5 := want[ids[5]]
	u5.Active = false
	want[ids[5]] = u5

	big, err := c.CreateGroup(ctx, scim.Group{ExternalID: "g-big", DisplayName: "Everyone"}, ids[:100])
	if err != nil {
		t.Fatalf("create group: %v", err)
	}
	if err := c.PatchGroup(ctx, big, client.GroupPatch{Add: ids[100:], Remove: ids[:10]}); err != nil {
		t.Fatalf("patch group: %v", err)
	}
	small, err := c.CreateGroup(ctx, scim.Group{ExternalID: "g-small", DisplayName: "Small"}, []string{ids[0], bossID})
	if err != nil {
		t.Fatal(err)
	}
	name := "Tiny"
	if err := c.PatchGroup(ctx, small, client.GroupPatch{DisplayName: &name, Remove: []string{ids[0]}}); err != nil {
		t.Fatal(err)
	}
	bigMembers := append([]string{}, ids[10:]...)
	sort.Strings(bigMembers)
	wantGroups := []scim.TargetGroup{
		{ID: big, ExternalID: "g-big", DisplayName: "Everyone", Members: bigMembers},
		{ID: small, ExternalID: "g-small", DisplayName: "Tiny", Members: []string{bossID}},
	}
	sort.Slice(wantGroups, func(i, j int) bool { return wantGroups[i].ID < wantGroups[j].ID })

	check := func(t *testing.T, st *scim.TargetState) {
		t.Helper()
		got := map[string]scim.User{}
		for _, u := range st.Users {
			got[u.ID] = u.User
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("users (-want +got):\n%s", d)
		}
		if d := cmp.Diff(wantGroups, st.Groups, cmpopts.IgnoreFields(scim.TargetGroup{}, "Created")); d != "" {
			t.Errorf("groups (-want +got):\n%s", d)
		}
	}
	readers := map[string]interface {
		ReadState(context.Context) (*scim.TargetState, error)
	}{"scim": c, "identitystore": emuReader(t, s, nil)}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			st, err := r.ReadState(ctx)
			if err != nil {
				t.Fatalf("ReadState: %v", err)
			}
			check(t, st)
		})
	}

	// Lookups, conflicts, not-found.
	if u, err := c.FindUser(ctx, "userName", "USER007@example.com"); err != nil || u == nil || u.ID != ids[7] {
		t.Errorf("FindUser by userName (case-insensitive) = %+v, %v", u, err)
	}
	if g, err := c.FindGroup(ctx, "externalId", "g-small"); err != nil || g == nil || g.ID != small {
		t.Errorf("FindGroup = %+v, %v", g, err)
	}
	if _, err := c.CreateUser(ctx, want[ids[1]], ""); !errors.Is(err, client.ErrConflict) {
		t.Errorf("duplicate create: %v, want ErrConflict", err)
	}
	if _, err := c.CreateGroup(ctx, scim.Group{DisplayName: "Tiny"}, nil); !errors.Is(err, client.ErrConflict) {
		t.Errorf("duplicate group: %v, want ErrConflict", err)
	}
	if err := c.DeleteUser(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteUser(ctx, ids[1]); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	hostile := `x" or userName pr or userName eq "y`
	if u, err := c.FindUser(ctx, "userName", hostile); err != nil || u != nil {
		t.Errorf("FindUser(hostile) = %+v, %v; want nil, nil", u, err)
	}
	// Reading memberships of a user that does not exist is an error, not an empty answer.
	if err := c.DeleteGroup(ctx, small); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteGroup(ctx, small); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("second group delete: %v, want ErrNotFound", err)
	}
}

// TestEmulatorStrict: the old form of Identity Center caps listings at 50 without paging; a
// SCIM read must fail instead of returning 50 users, while identitystore still reads all.
func TestEmulatorStrict(t *testing.T) {
	s := emulatortest.Start(t, emulator.Options{Strict: true})
	c := emuClient(t, s, nil)
	ctx := context.Background()
	for i := range 60 {
		if _, err := c.CreateUser(ctx, scim.User{UserName: fmt.Sprint("u", i), DisplayName: "U", GivenName: "G", FamilyName: "F", Active: true}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ReadState(ctx); !errors.Is(err, client.ErrTruncated) {
		t.Errorf("SCIM ReadState on a strict target: %v, want ErrTruncated", err)
	}
	st, err := emuReader(t, s, nil).ReadState(ctx)
	if err != nil || len(st.Users) != 60 {
		t.Errorf("identitystore ReadState = %d users, %v; want 60", len(st.Users), err)
	}
}

// TestEmulatorFaults: injected 500s and dropped connections are retried until every write
// lands exactly once; a throttled target is adapted to.
func TestEmulatorFaults(t *testing.T) {
	s := emulatortest.Start(t, emulator.Options{ErrorRatio: 0.15, DropRatio: 0.05, Seed: 7})
	c := emuClient(t, s, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for i := range 80 {
		wg.Go(func() {
			_, err := c.CreateUser(ctx, scim.User{ExternalID: fmt.Sprint("x", i), UserName: fmt.Sprint("f", i), DisplayName: "U", GivenName: "G", FamilyName: "F", Active: true}, "")
			if errors.Is(err, client.ErrConflict) {
				err = nil // a POST that landed but whose answer was dropped: resolved by lookup upstream
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("create under faults: %v", err)
		}
	}
	s.Emu.SetFaults(emulator.Faults{})
	st, err := c.ReadState(ctx)
	if err != nil || len(st.Users) != 80 {
		t.Errorf("ReadState = %d users, %v; want 80", len(st.Users), err)
	}
	t.Logf("emulator stats: %v", s.Emu.Stats())
}

// TestEmulatorThrottled runs concurrent writes against a rate-limited emulator through one
// limiter: every write succeeds, and the 429s stay few. It prints the figures.
func TestEmulatorThrottled(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds")
	}
	const rate, n = 40, 200
	s := emulatortest.Start(t, emulator.Options{RateLimit: rate})
	lim := client.NewLimiter(client.LimiterConfig{Initial: 20})
	rec := &recorder{}
	c := emuClient(t, s, func(cfg *client.Config) { cfg.Limiter = lim; cfg.Observer = rec; cfg.Retry.MaxAttempts = 20 })
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan int)
	var failed sync.Map
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				if _, err := c.CreateUser(ctx, scim.User{UserName: fmt.Sprint("t", i), DisplayName: "U", GivenName: "G", FamilyName: "F", Active: true}, ""); err != nil {
					failed.Store(i, err)
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	el := time.Since(start)
	failed.Range(func(k, v any) bool { t.Errorf("user %v: %v", k, v); return true })
	throttled := 0
	for _, call := range rec.calls {
		if call == "scim.CreateUser 429" {
			throttled++
		}
	}
	t.Logf("%d creates at an unknown %d req/s limit: %v (%.1f req/s), %d answered 429, limiter rate now %.1f",
		n, rate, el.Round(time.Millisecond), float64(n)/el.Seconds(), throttled, lim.Rate())
	if throttled > n/5 {
		t.Errorf("%d of %d requests throttled", throttled, n)
	}
}

// TestEmulatorIdentityStoreThrottled: ThrottlingException (HTTP 400) from identitystore is
// classified as a throttle, fed to the limiter and retried; the read completes.
func TestEmulatorIdentityStoreThrottled(t *testing.T) {
	s := emulatortest.Start(t, emulator.Options{})
	c := emuClient(t, s, nil)
	ctx := context.Background()
	for i := range 12 {
		uid, err := c.CreateUser(ctx, scim.User{UserName: fmt.Sprint("i", i), DisplayName: "U", GivenName: "G", FamilyName: "F", Active: true}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateGroup(ctx, scim.Group{DisplayName: fmt.Sprint("g", i)}, []string{uid}); err != nil {
			t.Fatal(err)
		}
	}
	s.Emu.SetFaults(emulator.Faults{RateLimit: 20, Burst: 2})
	lim := client.NewLimiter(client.LimiterConfig{Initial: 100})
	rec := &recorder{}
	r, err := client.NewIdentityStoreReader(ctx, client.IdentityStoreConfig{
		StoreID: s.StoreID, Region: "eu-west-1", Endpoint: s.IdentityStoreEndpoint, Limiter: lim, Observer: rec,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retry:       client.RetryPolicy{MaxAttempts: 10, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.ReadState(ctx)
	if err != nil {
		t.Fatalf("ReadState: %v", err)
	}
	if len(st.Users) != 12 || len(st.Groups) != 12 || len(st.Groups[0].Members) != 1 {
		t.Errorf("read %d users, %d groups", len(st.Users), len(st.Groups))
	}
	throttled := 0
	for _, call := range rec.calls {
		if strings.HasSuffix(call, " 400") {
			throttled++
		}
	}
	if throttled == 0 || lim.Rate() >= 100 {
		t.Errorf("%d throttles observed, limiter rate %.1f; want some, and a cut rate", throttled, lim.Rate())
	}
	t.Logf("%d requests, %d throttled, limiter rate %.1f", len(rec.calls), throttled, lim.Rate())
}
