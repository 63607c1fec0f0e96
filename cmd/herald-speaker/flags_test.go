package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spf13/pflag"
)

func TestParseFlagsMetricsAddress(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"the node's IPv4 address from the downward API", map[string]string{"HERALD_NODE_IP": "198.51.100.7"}, nil, "198.51.100.7:7473"},
		{"the node's IPv6 address, in brackets", map[string]string{"HERALD_NODE_IP": "2001:db8::7"}, nil, "[2001:db8::7]:7473"},
		{"outside Kubernetes: every address", nil, nil, ":7473"},
		{"the flag wins over the node's address", map[string]string{"HERALD_NODE_IP": "198.51.100.7"}, []string{"--metrics-address=127.0.0.1:9000"}, "127.0.0.1:9000"},
		{"empty disables it", map[string]string{"HERALD_NODE_IP": "198.51.100.7"}, []string{"--metrics-address="}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, func(k string) string { return tc.env[k] }, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if o.metricsAddr != tc.want {
				t.Errorf("metrics address = %q, want %q", o.metricsAddr, tc.want)
			}
		})
	}
}

func TestParseFlagsFromEnvironment(t *testing.T) {
	env := map[string]string{"NODE_NAME": "node-a", "POD_NAMESPACE": "herald"}
	o, err := parseFlags([]string{"--takeover-delay=0", "--startup-member-wait=0", "--log-format=text"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.NodeName != "node-a" || o.cfg.Namespace != "herald" || o.takeover != 0 || o.startupWait != 0 || o.log.Format != "text" {
		t.Errorf("parsed %+v", o)
	}
}

func TestParseFlagsRefuses(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"stray"}, {"--takeover-delay=soon"}, {"--status-interval=0s"},
		{"--heartbeat-timeout=50ms"}, {"--heartbeat-interval=0s"}, {"--heartbeat-port=70000"}, {"--heartbeat-port=-2"}, {"--startup-member-wait=-1s"}} {
		if _, err := parseFlags(args, func(string) string { return "" }, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
	if _, err := parseFlags([]string{"--help"}, func(string) string { return "" }, &bytes.Buffer{}); !errors.Is(err, pflag.ErrHelp) {
		t.Errorf("--help: %v, want pflag.ErrHelp", err)
	}
}
