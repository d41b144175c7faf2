package google

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/scimbridge/scimbridge/connectors"
)

const leakyKey = `{"type":"service_account","private_key":"TOP-SECRET-KEY-MATERIAL"}`

func TestValidate(t *testing.T) {
	valid := Config{Subject: "admin@example.com", ServiceAccountKey: leakyKey}
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings, one per expected problem
	}{
		{name: "minimal key", edit: func(*Config) {}},
		{name: "keyless", edit: func(c *Config) {
			c.ServiceAccountKey = ""
			c.ImpersonateServiceAccount = "sa@p.iam.gserviceaccount.com"
		}},
		{name: "full", edit: func(c *Config) {
			c.Domain, c.UserQuery, c.GroupQuery = "example.com", "isSuspended=false", "email:aws-*"
			c.CustomSchemas, c.Suspended, c.Archived, c.NestedGroups = []string{"Employment"}, Omit, Disable, Derived
			c.Concurrency, c.MaxAttempts = 10, 3
			c.Watch = WatchConfig{Address: "https://x.example.com/hook", Events: []string{"add", "makeAdmin"}, TTL: time.Hour, RenewBefore: 5 * time.Minute}
		}},
		{name: "nothing", edit: func(c *Config) { *c = Config{} }, want: []string{"subject is required", "one of service_account_key"}},
		{name: "everything wrong at once", edit: func(c *Config) {
			c.Subject = "admin"
			c.ServiceAccountKeyFile = "/k.json"
			c.ImpersonateServiceAccount = "nobody"
			c.Delegates = []string{"d@x"}
			c.CustomSchemas = []string{"bad name"}
			c.Suspended, c.Archived, c.NestedGroups = "delete", "keep", "flat"
			c.Concurrency, c.MaxAttempts = 100, -1
			c.RetryBackoff, c.MaxRetryBackoff = time.Minute, time.Second
			c.Endpoint = "ftp://x"
			c.Watch = WatchConfig{Address: "http://insecure.example.com", Events: []string{"remove"}, TTL: time.Second, RenewBefore: time.Hour}
		}, want: []string{
			`subject "admin" is not an email`,
			"service_account_key and service_account_key_file are both set",
			`impersonate_service_account "nobody"`,
			`custom_schemas: "bad name"`,
			`suspended is "delete"`,
			`archived is "keep"`,
			`nested_groups is "flat"`,
			"concurrency is 100",
			"max_attempts is -1",
			"retry_backoff 1m0s",
			`endpoint "ftp://x"`,
			"watch.address",
			`watch.events: "remove"`,
			"watch.ttl is 1s",
			"watch.renew_before is 1h0m0s",
		}},
		{name: "feed", edit: func(c *Config) {
			c.Feed = FeedConfig{PollInterval: 5 * time.Second, Overlap: 15 * time.Minute, Retention: 24 * time.Hour}
		}},
		{name: "feed wrong", edit: func(c *Config) {
			c.Feed = FeedConfig{PollInterval: time.Millisecond, Overlap: -time.Minute, Retention: -time.Hour}
		}, want: []string{"feed.poll_interval is 1ms", "feed.overlap is -1m0s", "feed.retention -1h0m0s"}},
		{name: "endpoint without slash", edit: func(c *Config) { c.Endpoint = "http://127.0.0.1:8080" }, want: []string{"must end with /"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %d problems", len(tc.want))
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			if got := strings.Count(msg, "\n") + 1; got != len(tc.want) {
				t.Errorf("%d problems reported, want %d:\n%s", got, len(tc.want), msg)
			}
		})
	}
}

// TestConfigNeverPrintsTheKey renders the config every way a person might see it.
func TestConfigNeverPrintsTheKey(t *testing.T) {
	c := Config{Subject: "admin", ServiceAccountKey: leakyKey, Watch: WatchConfig{Address: "http://x"}}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v %+v %#v %s\n", c, c, c, c.ServiceAccountKey)
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	b.Write(y)
	b.WriteString(c.Validate().Error())
	if strings.Contains(b.String(), "TOP-SECRET") {
		t.Errorf("the key leaked:\n%s", b.String())
	}
}

func TestConfigDecodesStrictly(t *testing.T) {
	const doc = `
subject: admin@example.com
service_account_key_file: /run/key.json
user_query: "orgUnitPath='/Eng'"
custom_schemas: [Employment]
suspended: omit
nested_groups: derived
concurrency: 8
retry_backoff: 250ms
watch:
  address: https://hooks.example.com/google
  ttl: 2h
  renew_before: 10m
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.RetryBackoff != 250*time.Millisecond || c.Watch.TTL != 2*time.Hour || c.NestedGroups != Derived {
		t.Errorf("decoded %+v", c)
	}
	dec = yaml.NewDecoder(strings.NewReader("subject: a@b\nsubjct: typo\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&Config{}); err == nil {
		t.Error("an unknown key decoded without error")
	}
}

func TestFlavourCompiles(t *testing.T) {
	f := Config{}.Flavour()
	if f.Name != "google" {
		t.Errorf("flavour name = %q", f.Name)
	}
	if _, err := connectors.Compile(f, connectors.MappingConfig{}, connectors.ScopeConfig{}); err != nil {
		t.Fatalf("Compile(google flavour): %v", err)
	}
}
