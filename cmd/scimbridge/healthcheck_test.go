package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthcheckURL(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"", "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:9000", "http://127.0.0.1:9000/healthz"},
		{"[::]:9001", "http://127.0.0.1:9001/healthz"},
		{"10.1.2.3:8081", "http://10.1.2.3:8081/healthz"},
		{"not-an-address", "http://127.0.0.1:8080/healthz"},
	} {
		lookup := func(string) (string, bool) { return tc.listen, tc.listen != "" }
		if got := healthcheckURL(lookup); got != tc.want {
			t.Errorf("listen %q: got %s, want %s", tc.listen, got, tc.want)
		}
	}
}

func TestProbe(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
		case "/slow":
			<-release
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	defer close(release)
	var out bytes.Buffer
	if err := probe(context.Background(), srv.URL+"/healthz", time.Second, &out); err != nil || !strings.Contains(out.String(), "200") {
		t.Errorf("200: %v, %q", err, out.String())
	}
	if err := probe(context.Background(), srv.URL+"/readyz", time.Second, &out); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v", err)
	}
	if err := probe(context.Background(), srv.URL+"/slow", 50*time.Millisecond, &out); err == nil {
		t.Error("a probe that outlives its timeout must fail")
	}
}
