package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"k8s.io/klog/v2"
)

func TestNewLoggerRoutesKlog(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewLogger(&buf, LogOptions{Format: "json", Level: "info"}); err != nil {
		t.Fatal(err)
	}
	klog.InfoS("from klog", "answer", 42)
	klog.Flush()
	got := buf.String()
	for _, want := range []string{`"msg":"from klog"`, `"answer":42`, `"source":"client-go"`} {
		if !strings.Contains(got, want) {
			t.Errorf("log output %q lacks %s", got, want)
		}
	}
}

func TestNewLoggerRejectsBadOptions(t *testing.T) {
	for _, opts := range []LogOptions{{Format: "xml", Level: "info"}, {Format: "json", Level: "loud"}} {
		if _, err := NewLogger(io.Discard, opts); err == nil {
			t.Errorf("NewLogger(%+v) succeeded, want an error", opts)
		}
	}
}

func TestEndpointServesChecks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notReady := errors.New("informers not synced")
	e := Endpoint{Addr: addr, Gatherer: NewRegistry(), Ready: func() error { return notReady }}
	if _, err := e.Serve(ctx); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/metrics": 200} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d (%s), want %d", path, resp.StatusCode, body, want)
		}
		if path == "/readyz" && !strings.Contains(string(body), notReady.Error()) {
			t.Errorf("GET /readyz body %q does not say why", body)
		}
	}
}

func TestEndpointServesProfilesOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		profiling bool
		want      int
	}{{false, http.StatusNotFound}, {true, http.StatusOK}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := (Endpoint{Addr: addr, Gatherer: NewRegistry(), Profiling: tc.profiling}).Serve(ctx); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + addr + "/debug/pprof/heap")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cancel()
		if resp.StatusCode != tc.want {
			t.Errorf("profiling %v: GET /debug/pprof/heap = %d, want %d", tc.profiling, resp.StatusCode, tc.want)
		}
	}
}
