package emulator_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
)

func TestRateLimit(t *testing.T) {
	srv, c := start(t, emulator.Options{RateLimit: 1, Burst: 3})
	statuses := map[int]int{}
	var throttled response
	for range 6 {
		r := c.do("GET", "/Users", nil)
		statuses[r.status]++
		if r.status == 429 {
			throttled = r
		}
	}
	if statuses[200] < 3 || statuses[429] < 1 {
		t.Fatalf("statuses = %v, want at least 3x200 then 429s", statuses)
	}
	checkAWSError(t, throttled, 429)
	if s, err := strconv.Atoi(throttled.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After = %q, want a positive number of seconds", throttled.header.Get("Retry-After"))
	}
	st := srv.Emu.Stats()
	if st["throttled"] != int64(statuses[429]) || st["scim.ListUsers"] != int64(statuses[200]) {
		t.Errorf("stats = %v, statuses %v", st, statuses)
	}
	// Lifting the limit at runtime takes effect at once.
	srv.Emu.SetFaults(emulator.Faults{})
	for range 20 {
		c.must(200, "GET", "/Users", nil)
	}
}

func TestInjectedErrorsAndDrops(t *testing.T) {
	srv, c := start(t, emulator.Options{ErrorRatio: 1})
	checkAWSError(t, c.do("GET", "/Users", nil), 500)
	if st := srv.Emu.Stats(); st["injected"] != 1 || st["scim.ListUsers"] != 0 {
		t.Errorf("stats = %v", st)
	}

	srv.Emu.SetFaults(emulator.Faults{DropRatio: 1})
	req, _ := http.NewRequest("GET", srv.URL+"/Users", nil)
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped request got status %d, want a connection error", resp.StatusCode)
	}
	if st := srv.Emu.Stats(); st["dropped"] < 1 {
		t.Errorf("stats = %v, want dropped", st)
	}

	// A ratio of one half with a fixed seed gives both outcomes, the same ones every time.
	srv.Emu.SetFaults(emulator.Faults{ErrorRatio: 0.5})
	srv.Emu.ResetStats()
	for range 40 {
		c.do("GET", "/Users", nil)
	}
	if st := srv.Emu.Stats(); st["injected"] == 0 || st["scim.ListUsers"] == 0 || st["injected"]+st["scim.ListUsers"] != 40 {
		t.Errorf("stats with ratio 0.5 = %v", st)
	}
}

func TestSeededFaultsRepeat(t *testing.T) {
	run := func() []int {
		_, c := start(t, emulator.Options{ErrorRatio: 0.3, Seed: 7})
		var out []int
		for range 30 {
			out = append(out, c.do("GET", "/Groups", nil).status)
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different faults: %v vs %v", a, b)
		}
	}
}

func TestLatency(t *testing.T) {
	_, c := start(t, emulator.Options{Latency: 50 * time.Millisecond})
	begin := time.Now()
	c.must(200, "GET", "/Users", nil)
	if d := time.Since(begin); d < 50*time.Millisecond {
		t.Errorf("request took %v, want at least the added 50ms", d)
	}
}

func TestStatsEndpoint(t *testing.T) {
	srv, c := start(t, emulator.Options{})
	id := c.createUser("gina")
	c.must(200, "GET", "/Users/"+id, nil)
	c.must(204, "PATCH", "/Groups/"+c.createGroup("g"), patch(op("add", "members", []any{map[string]any{"value": id}})))
	sc := &client{t: t, base: srv.HTTP.URL, token: srv.Token}
	r := sc.must(200, "GET", emulator.StatsPath, nil)
	var st emulator.Stats
	if err := json.Unmarshal([]byte(r.raw), &st); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]int64{"scim.CreateUser": 1, "scim.GetUser": 1, "scim.CreateGroup": 1, "scim.PatchGroup": 1} {
		if st[k] != want {
			t.Errorf("stats[%s] = %d, want %d (all: %v)", k, st[k], want, st)
		}
	}
	sc.must(204, "DELETE", emulator.StatsPath, nil)
	if st := srv.Emu.Stats(); len(st) != 0 {
		t.Errorf("stats after reset = %v", st)
	}
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "emu.db")
	emu, err := emulator.New(emulator.Options{DataPath: path})
	if err != nil {
		t.Fatal(err)
	}
	token, tenant, storeID := emu.Token(), emu.SCIMPath(), emu.IdentityStoreID()
	if err := emu.Close(); err != nil {
		t.Fatal(err)
	}
	srv := emulatortest.Start(t, emulator.Options{DataPath: path})
	if srv.Token != token || srv.Emu.SCIMPath() != tenant || srv.StoreID != storeID {
		t.Fatalf("restart changed token/tenant/store id")
	}
	c := newClient(t, srv)
	uid := c.createUser("henry")
	gid := c.createGroup("keepers", uid)
	srv.HTTP.Close()
	srv.Emu.Close()

	srv2 := emulatortest.Start(t, emulator.Options{DataPath: path})
	c2 := newClient(t, srv2)
	c2.must(200, "GET", "/Users/"+uid, nil)
	r := c2.must(200, "GET", "/Groups"+q(`id eq "`+gid+`" and members eq "`+uid+`"`), nil)
	if len(r.resources()) != 1 {
		t.Errorf("membership lost across restart: %s", r.raw)
	}
	checkAWSError(t, c2.do("POST", "/Users", user("HENRY")), 409)
}
