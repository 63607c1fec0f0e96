package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestMainWithoutCluster checks the exit codes and messages and messages of what needs no cluster.
func TestMainWithoutCluster(t *testing.T) {
	const sample = "../migrate/testdata/metallb-configsamples/bgppeer_with_vrf.yaml"
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		wantOut    string
		wantErrOut string
	}{
		{"help", []string{"--help"}, 0, "explain svc NAME", ""},
		{"explain wants svc", []string{"explain", "pod", "x"}, 2, "", "want: explain svc NAME"},
		{"plan wants a file", []string{"plan"}, 2, "", "give the changed objects with -f FILE"},
		{"offline wants files", []string{"migrate", "metallb", "--offline"}, 2, "", "--offline needs the configuration in files"},
		{"offline cannot apply", []string{"migrate", "metallb", "--offline", "--apply", "-f", sample}, 2, "", "cannot be --offline"},
		{"an unknown flag", []string{"status", "--nope"}, 2, "", "unknown flag: --nope"},
		{"an offline plan", []string{"migrate", "metallb", "--offline", "-f", sample}, 0, "BGPPeer/metallb-system/peer spec.vrf = red", ""},
		{"an unknown output", []string{"migrate", "metallb", "--offline", "-o", "json", "-f", sample}, 2, "", `unknown output format "json"`},
		{"a missing file", []string{"migrate", "metallb", "--offline", "-f", "nowhere.yaml"}, 1, "", "nowhere.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(t.Context(), tc.args, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String(), tc.wantOut) || !strings.Contains(errOut.String(), tc.wantErrOut) {
				t.Errorf("exit %d (want %d)\nstdout %s\nstderr %s\nwant stdout %q, stderr %q", code, tc.code, out.String(), errOut.String(), tc.wantOut, tc.wantErrOut)
			}
		})
	}
}
