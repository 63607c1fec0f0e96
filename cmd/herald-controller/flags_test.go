package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/herald-dev/herald/cmd/internal/daemon"
	"github.com/herald-dev/herald/controller"
)

func TestParseFlags(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("POD_NAMESPACE", "herald")
	t.Setenv("POD_NAME", "herald-controller-abc")
	t.Setenv("HERALD_POD_IP", "")
	tests := []struct {
		name string
		args []string
		want options
	}{
		{
			name: "defaults",
			want: options{
				apiQPS: 300, apiBurst: 600, metricsAddr: ":7472",
				log:       daemon.LogOptions{Format: "json", Level: "info"},
				namespace: "herald", memberlist: "herald-memberlist", workers: controller.DefaultWorkers, resync: 10 * time.Minute,
				leaderEnabled: true,
				leaderElect: controller.LeaderElection{Enabled: true, LeaseName: "herald-controller", LeaseNamespace: "herald",
					Identity: "herald-controller-abc", LeaseDuration: controller.DefaultLeaseDuration,
					RenewDeadline: controller.DefaultRenewDeadline, RetryPeriod: controller.DefaultRetryPeriod},
			},
		},
		{
			name: "everything set",
			args: []string{"--kubeconfig=/k", "--load-balancer-class=herald.dev/x", "--leader-elect=false", "--workers=8",
				"--resync=0", "--metrics-bind-address=", "--log-format=text", "--log-level=debug", "--leader-elect-lease-duration=20s",
				"--memberlist-secret-name="},
			want: options{
				kubeconfig: "/k", class: "herald.dev/x", apiQPS: 300, apiBurst: 600,
				log:       daemon.LogOptions{Format: "text", Level: "debug"},
				namespace: "herald", workers: 8,
				leaderElect: controller.LeaderElection{LeaseName: "herald-controller", LeaseNamespace: "herald",
					Identity: "herald-controller-abc", LeaseDuration: 20 * time.Second,
					RenewDeadline: controller.DefaultRenewDeadline, RetryPeriod: controller.DefaultRetryPeriod},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFlags("herald-controller", tc.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(options{})); diff != "" {
				t.Errorf("parseFlags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	_, err := parseFlags("herald-controller", []string{"--help"}, &out)
	if !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("--help: err = %v, want pflag.ErrHelp", err)
	}
	for _, flag := range []string{"--kubeconfig", "--leader-elect", "--leader-elect-lease-name", "--leader-elect-lease-namespace",
		"--leader-elect-lease-duration", "--leader-elect-renew-deadline", "--leader-elect-retry-period", "--load-balancer-class",
		"--metrics-bind-address", "--log-format", "--log-level", "--workers", "--resync", "--memberlist-secret-name"} {
		if !strings.Contains(out.String(), flag+" ") {
			t.Errorf("--help does not explain %s", flag)
		}
	}
}

func TestUnexpectedArguments(t *testing.T) {
	if _, err := parseFlags("herald-controller", []string{"extra"}, &bytes.Buffer{}); err == nil {
		t.Error("a positional argument was accepted")
	}
}

func TestParseFlagsMetricsAddressFromPodIP(t *testing.T) {
	for _, tc := range []struct{ podIP, args, want string }{
		{"10.244.1.7", "", "10.244.1.7:7472"},
		{"fd00:10:244::7", "", "[fd00:10:244::7]:7472"},
		{"", "", ":7472"},
		{"10.244.1.7", "--metrics-bind-address=127.0.0.1:9000", "127.0.0.1:9000"},
	} {
		t.Run(tc.podIP+tc.args, func(t *testing.T) {
			t.Setenv("HERALD_POD_IP", tc.podIP)
			var args []string
			if tc.args != "" {
				args = []string{tc.args}
			}
			o, err := parseFlags("herald-controller", args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if o.metricsAddr != tc.want {
				t.Errorf("metrics address = %q, want %q", o.metricsAddr, tc.want)
			}
		})
	}
}
