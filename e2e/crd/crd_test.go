// Package crd tests Herald's CustomResourceDefinitions against a real kube-apiserver: the
// schema and CEL rules refuse bad objects with the apiserver's own message, every example
// applies, and kubectl explains the fields.
package crd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/herald-dev/herald/e2e/controlplane"
)

var resources = map[string]schema.GroupVersionResource{
	"IPPool":           {Group: "herald.dev", Version: "v1alpha1", Resource: "ippools"},
	"L2Advertisement":  {Group: "herald.dev", Version: "v1alpha1", Resource: "l2advertisements"},
	"BGPPeer":          {Group: "herald.dev", Version: "v1alpha1", Resource: "bgppeers"},
	"BGPAdvertisement": {Group: "herald.dev", Version: "v1alpha1", Resource: "bgpadvertisements"},
	"AddressClaim":     {Group: "herald.dev", Version: "v1alpha1", Resource: "addressclaims"},
}

// TestCRDs runs the subtests against one control plane with Herald's CRDs installed.
func TestCRDs(t *testing.T) {
	cp := controlplane.StartForTest(t, controlplane.Options{})
	client := dynamic.NewForConfigOrDie(cp.Config())
	t.Run("valid objects are accepted", func(t *testing.T) { testValid(t, client) })
	t.Run("bad objects are refused", func(t *testing.T) { testRefused(t, client) })
	t.Run("address claims", func(t *testing.T) { testAddressClaims(t, client) })
	t.Run("examples apply", func(t *testing.T) { testExamples(t, cp) })
	t.Run("kubectl explain", func(t *testing.T) { testExplain(t, cp) })
	t.Run("an inline BGP password draws a deprecation warning", func(t *testing.T) { testPasswordWarning(t, cp) })
}

// testValid creates one object of each kind, close to the refused ones below, so that a
// refusal there is due to the one field each case breaks.
func testValid(t *testing.T, client dynamic.Interface) {
	for i, tt := range []struct{ name, kind, spec string }{
		{"pool of CIDRs and ranges", "IPPool", `{addresses: [198.51.100.0/26, 198.51.100.70-198.51.100.90, "2001:db8:1::/64", "2001:db8:2::10-2001:db8:2::ff"]}`},
		{"peer with hold time and secret", "BGPPeer", `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, port: 1179, holdTime: 3s, keepaliveTime: 1s, passwordSecretRef: {name: bgp, key: password}}`},
		{"multihop peer with BFD turned off", "BGPPeer", `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, ebgpMultihop: true, bfd: {enabled: false}}`},
		{"unnumbered peer", "BGPPeer", `{interface: eth1, peerASN: 64512, myASN: 64513, holdTime: 9s, bfd: {enabled: false}}`},
		{"unnumbered iBGP peer with a password", "BGPPeer", `{interface: bond0.100, peerASN: 64512, myASN: 64512, passwordSecretRef: {name: bgp}}`},
		{"L2 advertisement by selector", "L2Advertisement", `{ipPoolSelector: {matchLabels: {l2: "yes"}}}`},
		{"BGP advertisement by name", "BGPAdvertisement", `{ipPools: [pool], communities: ["65000:100"]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			obj := object(t, tt.kind, fmt.Sprintf("valid-%s-%d", strings.ToLower(tt.kind), i), tt.spec)
			if _, err := client.Resource(resources[tt.kind]).Create(t.Context(), obj, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create valid %s: %v", tt.kind, err)
			}
		})
	}
}

func testRefused(t *testing.T, client dynamic.Interface) {
	tests := []struct {
		name    string
		kind    string
		spec    string // YAML
		wantMsg string // a substring of the apiserver's message
	}{
		{
			name:    "invalid CIDR",
			kind:    "IPPool",
			spec:    `{addresses: [198.51.100.0/33]}`,
			wantMsg: "198.51.100.0/33 is neither a CIDR",
		},
		{
			name:    "CIDR with host bits",
			kind:    "IPPool",
			spec:    `{addresses: [198.51.100.7/24]}`,
			wantMsg: "no address bits set beyond its prefix length: write 198.51.100.0/24",
		},
		{
			name:    "reversed IPv4 range",
			kind:    "IPPool",
			spec:    `{addresses: [198.51.100.20-198.51.100.10]}`,
			wantMsg: "range 198.51.100.20-198.51.100.10 runs backwards",
		},
		{
			name:    "reversed IPv6 range",
			kind:    "IPPool",
			spec:    `{addresses: ["2001:db8::ff-2001:db8::10"]}`,
			wantMsg: "range 2001:db8::ff-2001:db8::10 runs backwards",
		},
		{
			name:    "range mixing families",
			kind:    "IPPool",
			spec:    `{addresses: ["198.51.100.1-2001:db8::1"]}`,
			wantMsg: "range 198.51.100.1-2001:db8::1 mixes IPv4 and IPv6",
		},
		{
			name:    "range with spaces",
			kind:    "IPPool",
			spec:    `{addresses: ["198.51.100.1 - 198.51.100.9"]}`,
			wantMsg: "is neither a CIDR",
		},
		{
			name:    "peer ASN of 0",
			kind:    "BGPPeer",
			spec:    `{peerAddress: 203.0.113.1, peerASN: 0, myASN: 64513}`,
			wantMsg: "spec.peerASN in body should be greater than or equal to 1",
		},
		{
			name:    "port of 70000",
			kind:    "BGPPeer",
			spec:    `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, port: 70000}`,
			wantMsg: "spec.port in body should be less than or equal to 65535",
		},
		{
			name:    "hold time of 1s",
			kind:    "BGPPeer",
			spec:    `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, holdTime: 1s}`,
			wantMsg: "holdTime 1s is out of range",
		},
		{
			name:    "hold time of 0s (no keepalives), which GoBGP cannot honour",
			kind:    "BGPPeer",
			spec:    `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, holdTime: 0s}`,
			wantMsg: "0s, no keepalives, is not supported",
		},
		{
			name:    "BFD with eBGP multihop",
			kind:    "BGPPeer",
			spec:    `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, ebgpMultihop: true, bfd: {minRx: 300ms}}`,
			wantMsg: "bfd cannot be used with ebgpMultihop",
		},
		{
			name:    "local preference 0, which GoBGP's policy cannot send",
			kind:    "BGPAdvertisement",
			spec:    `{localPref: 0}`,
			wantMsg: "should be greater than or equal to 1",
		},
		{
			name:    "keepalive not shorter than hold time",
			kind:    "BGPPeer",
			spec:    `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, holdTime: 9s, keepaliveTime: 9s}`,
			wantMsg: "keepaliveTime must be shorter than holdTime",
		},
		{
			name:    "peer address with prefix length",
			kind:    "BGPPeer",
			spec:    `{peerAddress: 203.0.113.1/32, peerASN: 64512, myASN: 64513}`,
			wantMsg: "203.0.113.1/32 is not a usable IP address",
		},
		{
			name:    "neither peerAddress nor interface",
			kind:    "BGPPeer",
			spec:    `{peerASN: 64512, myASN: 64513}`,
			wantMsg: "set exactly one of peerAddress (a numbered session) and interface",
		},
		{
			name:    "peerAddress and interface together",
			kind:    "BGPPeer",
			spec:    `{peerAddress: 203.0.113.1, interface: eth1, peerASN: 64512, myASN: 64513}`,
			wantMsg: "set exactly one of peerAddress (a numbered session) and interface",
		},
		{
			name:    "unnumbered peer with a source address",
			kind:    "BGPPeer",
			spec:    `{interface: eth1, peerASN: 64512, myASN: 64513, sourceAddress: 198.51.100.11}`,
			wantMsg: "sourceAddress cannot be used with interface",
		},
		{
			name:    "unnumbered peer with eBGP multihop",
			kind:    "BGPPeer",
			spec:    `{interface: eth1, peerASN: 64512, myASN: 64513, ebgpMultihop: true}`,
			wantMsg: "ebgpMultihop cannot be used with interface",
		},
		{
			name:    "unnumbered peer with BFD",
			kind:    "BGPPeer",
			spec:    `{interface: eth1, peerASN: 64512, myASN: 64513, bfd: {}}`,
			wantMsg: "bfd cannot be used with interface",
		},
		{
			name:    "interface name longer than Linux allows",
			kind:    "BGPPeer",
			spec:    `{interface: abcdefghijklmnop, peerASN: 64512, myASN: 64513}`,
			wantMsg: "spec.interface: Too long",
		},
		{
			name:    "interface name with a slash",
			kind:    "BGPPeer",
			spec:    `{interface: "eth0/1", peerASN: 64512, myASN: 64513}`,
			wantMsg: "spec.interface in body should match",
		},
		{
			name:    "password and passwordSecretRef together",
			kind:    "BGPPeer",
			spec:    `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, password: s3cret, passwordSecretRef: {name: bgp}}`,
			wantMsg: "set either password or passwordSecretRef, not both",
		},
		{
			name:    "passwordSecretRef in another namespace",
			kind:    "BGPPeer",
			spec:    `{peerAddress: 203.0.113.1, peerASN: 64512, myASN: 64513, passwordSecretRef: {name: bgp, namespace: tenant-a}}`,
			wantMsg: "passwordSecretRef.namespace is not supported: Herald reads BGP password Secrets only in the namespace it runs in",
		},
		{
			name:    "ipPools and ipPoolSelector together (L2)",
			kind:    "L2Advertisement",
			spec:    `{ipPools: [pool], ipPoolSelector: {matchLabels: {l2: "yes"}}}`,
			wantMsg: "set either ipPools or ipPoolSelector, not both",
		},
		{
			name:    "ipPools and ipPoolSelector together (BGP)",
			kind:    "BGPAdvertisement",
			spec:    `{ipPools: [pool], ipPoolSelector: {}}`,
			wantMsg: "set either ipPools or ipPoolSelector, not both",
		},
		{
			name:    "community out of range",
			kind:    "BGPAdvertisement",
			spec:    `{communities: ["65536:1"]}`,
			wantMsg: "65536:1 is not a community",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("bad-%d", i)
			obj := object(t, tt.kind, name, tt.spec)
			_, err := client.Resource(resources[tt.kind]).Create(t.Context(), obj, metav1.CreateOptions{})
			if err == nil {
				t.Fatalf("the apiserver accepted %s %s; want it refused with %q", tt.kind, tt.spec, tt.wantMsg)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create: got %v (reason %s), want Invalid", err, apierrors.ReasonForError(err))
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("the apiserver's message\n  %s\ndoes not contain\n  %s", err, tt.wantMsg)
			}
		})
	}
}

// object builds an unstructured object of kind from a YAML spec.
func object(t *testing.T, kind, name, spec string) *unstructured.Unstructured {
	t.Helper()
	var s map[string]any
	if err := yaml.Unmarshal([]byte(spec), &s); err != nil {
		t.Fatalf("test spec %s: %v", spec, err)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "herald.dev/v1alpha1",
		"kind":       kind,
		"metadata":   map[string]any{"name": name},
		"spec":       s,
	}}
}

// testExamples applies every file in examples/ with the kubectl we built, as a user would,
// and checks that kubectl then finds every object the file declares.
func testExamples(t *testing.T, cp *controlplane.ControlPlane) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "examples")
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no example manifests in %s: there must be at least one", dir)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(controlplane.SplitYAML(data)) == 0 {
				t.Fatalf("%s declares no object", file)
			}
			cmd := cp.Kubectl(t.Context(), "apply", "-f", file)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubectl apply -f %s: %v\n%s%s", file, err, out, stderr.String())
			}
			// Cleanly: no warning either (deprecated or unknown fields, for example).
			if stderr.Len() > 0 {
				t.Errorf("kubectl apply -f %s warned:\n%s", file, stderr.String())
			}
			out, err = cp.Kubectl(t.Context(), "get", "-f", file, "-o", "name").Output()
			if err != nil {
				t.Fatalf("kubectl get -f %s: %v\n%s", file, err, stderrOf(err))
			}
			if got, want := len(strings.Fields(string(out))), len(controlplane.SplitYAML(data)); got != want {
				t.Errorf("kubectl get -f %s found %d objects, want %d:\n%s", file, got, want, out)
			}
		})
	}
}

// testExplain checks that `kubectl explain ippool.spec.addresses` prints the description
// the CRD gives the field.
func testExplain(t *testing.T, cp *controlplane.ControlPlane) {
	want := addressesDescription(t)
	// The apiserver publishes a new CRD's OpenAPI a moment after it is Established.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out []byte
	var err error
	for {
		out, err = cp.Kubectl(ctx, "explain", "ippool.spec.addresses").Output()
		if err == nil && strings.Contains(normalizeSpace(string(out)), want) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("kubectl explain ippool.spec.addresses: %v %s\noutput:\n%s\nwant it to contain the field's description:\n%s",
				err, stderrOf(err), out, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(string(out), "FIELD: addresses <[]string>") {
		t.Errorf("kubectl explain output lacks the field's name and type:\n%s", out)
	}
}

// addressesDescription returns the description of spec.addresses in the IPPool CRD, with
// whitespace runs collapsed as kubectl's line wrapping makes them irrelevant.
func addressesDescription(t *testing.T) string {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	crds, err := controlplane.ReadCRDs(filepath.Join(root, "deploy", "crds"))
	if err != nil {
		t.Fatal(err)
	}
	for _, crd := range crds {
		if crd.Spec.Names.Kind != "IPPool" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			desc := v.Schema.OpenAPIV3Schema.Properties["spec"].Properties["addresses"].Description
			if desc == "" {
				t.Fatal("the IPPool CRD gives spec.addresses no description")
			}
			return normalizeSpace(desc)
		}
	}
	t.Fatal("no IPPool CRD with a schema in deploy/crds")
	return ""
}

func normalizeSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

func stderrOf(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(exit.Stderr)
	}
	return ""
}
