package productlab

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
)

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

func TestWorkloadCommand(t *testing.T) {
	facts := PodFacts{Namespace: "herald-system", Name: "herald-speaker-node1", NodeName: "node1", PodIP: "198.51.100.11", HostIP: "198.51.100.11"}
	tests := []struct {
		name     string
		c        corev1.Container
		argv     []string
		env      []string
		wantFail bool
	}{
		{
			name: "downward API and $(VAR) expansion, $$ escapes, unknown names stay",
			c: corev1.Container{Name: "speaker", Command: []string{"/herald-speaker"},
				Args: []string{"--node-name=$(NODE_NAME)", "--namespace=$(POD_NAMESPACE)", "--literal=$$(NODE_NAME)", "--unknown=$(NOPE)"},
				Env: []corev1.EnvVar{fieldEnv("NODE_NAME", "spec.nodeName"), fieldEnv("POD_NAMESPACE", "metadata.namespace"),
					fieldEnv("HERALD_NODE_IP", "status.hostIP"), {Name: "GREETING", Value: "on $(NODE_NAME)"}}},
			argv: []string{"/herald-speaker", "--node-name=node1", "--namespace=herald-system", "--literal=$(NODE_NAME)", "--unknown=$(NOPE)"},
			env:  []string{"NODE_NAME=node1", "POD_NAMESPACE=herald-system", "HERALD_NODE_IP=198.51.100.11", "GREETING=on node1"},
		},
		{
			name: "pod name and IP",
			c: corev1.Container{Name: "controller", Command: []string{"/herald-controller"}, Args: []string{"--id=$(POD_NAME)"},
				Env: []corev1.EnvVar{fieldEnv("POD_NAME", "metadata.name"), fieldEnv("HERALD_POD_IP", "status.podIP")}},
			argv: []string{"/herald-controller", "--id=herald-speaker-node1"},
			env:  []string{"POD_NAME=herald-speaker-node1", "HERALD_POD_IP=198.51.100.11"},
		},
		{
			name: "a Secret value: the lab has none to give",
			c: corev1.Container{Name: "c", Command: []string{"/x"}, Env: []corev1.EnvVar{{Name: "K",
				ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}}},
			wantFail: true,
		},
		{
			name:     "an unknown field",
			c:        corev1.Container{Name: "c", Command: []string{"/x"}, Env: []corev1.EnvVar{fieldEnv("UID", "metadata.uid")}},
			wantFail: true,
		},
		{name: "no command: the image's entrypoint, which the lab does not know", c: corev1.Container{Name: "c"}, wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv, env, err := Workload{Container: tt.c}.Command(facts)
			if (err != nil) != tt.wantFail {
				t.Fatalf("err = %v, want failure %v", err, tt.wantFail)
			}
			if diff := cmp.Diff(tt.argv, argv); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.env, env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWorkloadPrivileges(t *testing.T) {
	dropAll := func(add ...corev1.Capability) *corev1.Capabilities {
		return &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: add}
	}
	tests := []struct {
		name     string
		pod      *corev1.PodSecurityContext
		c        *corev1.SecurityContext
		want     Privileges
		wantFail bool
	}{
		{
			name: "the controller: the Pod's user, nothing kept",
			pod:  &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532)},
			c:    &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), Capabilities: dropAll()},
			want: Privileges{UID: 65532, GID: 65532, NoNewPrivs: true, ReadOnlyRoot: true},
		},
		{
			name: "the speaker: root holding NET_RAW only, the container overriding the image's user",
			c: &corev1.SecurityContext{RunAsUser: ptr.To[int64](0), AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem: ptr.To(true), Capabilities: dropAll("NET_RAW")},
			want: Privileges{UID: 0, GID: 65532, Capabilities: []string{"net_raw"}, NoNewPrivs: true, ReadOnlyRoot: true},
		},
		{
			name: "the container's user over the Pod's; CAP_ prefixes and order do not matter",
			pod:  &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)},
			c:    &corev1.SecurityContext{RunAsUser: ptr.To[int64](2000), RunAsGroup: ptr.To[int64](3000), Capabilities: dropAll("NET_RAW", "CAP_NET_ADMIN")},
			want: Privileges{UID: 2000, GID: 3000, Capabilities: []string{"net_admin", "net_raw"}},
		},
		{name: "the runtime's default capabilities: not supported", c: &corev1.SecurityContext{}, wantFail: true},
		{name: "no security context", wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Workload{Pod: corev1.PodSpec{SecurityContext: tt.pod}, Container: corev1.Container{Name: "c", SecurityContext: tt.c}}
			got, err := w.Privileges()
			if (err != nil) != tt.wantFail {
				t.Fatalf("err = %v, want failure %v", err, tt.wantFail)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" && !tt.wantFail {
				t.Errorf("privileges (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLabCommand(t *testing.T) {
	manifest := []string{"/herald-speaker", "--node-name=node1", "--log-format=json"}
	tests := []struct {
		name      string
		binary    string
		labFlags  []string
		extra     []string
		want      []string
		wantError string
	}{
		{
			name: "lab flags after the manifests', the test's last", binary: "/cache/herald-speaker-1a2b",
			labFlags: []string{"--kubeconfig=/etc/herald/kubeconfig", "--metrics-address=127.0.0.1:7473"}, extra: []string{"--takeover-delay=0s"},
			want: []string{"/etc/herald/bin/herald-speaker", "--node-name=node1", "--log-format=json",
				"--kubeconfig=/etc/herald/kubeconfig", "--metrics-address=127.0.0.1:7473", "--takeover-delay=0s"},
		},
		{name: "another binary", binary: "/cache/herald-controller-1a2b", wantError: "the lab built"},
		{name: "a flag the lab may not add", binary: "/b/herald-speaker", labFlags: []string{"--takeover-delay=0s"}, wantError: "not one of the flags"},
		{
			name: "a lab flag the manifests set", binary: "/b/herald-speaker", labFlags: []string{"--kubeconfig=/k"},
			wantError: "would override",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := manifest
			if tt.name == "a lab flag the manifests set" {
				argv = append(slices.Clone(manifest), "--kubeconfig=/var/k")
			}
			got, err := labCommand(argv, tt.binary, tt.labFlags, tt.extra)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSandboxArgs(t *testing.T) {
	got := sandboxArgs(Privileges{UID: 0, GID: 65532, Capabilities: []string{"net_raw"}, NoNewPrivs: true, ReadOnlyRoot: true},
		"/lab/pods/node1-speaker/etc", []string{"A=1"}, []string{"/etc/herald/bin/herald-speaker", "--x"})
	i := slices.Index(got, "setpriv")
	if i < 0 || got[0] != "unshare" || got[1] != "--mount" {
		t.Fatalf("not unshare --mount ... setpriv: %q", got)
	}
	if !strings.Contains(got[5], "remount,bind,ro") || !strings.Contains(got[5], "lowerdir=\"$1\":/etc /etc") || got[7] != "/lab/pods/node1-speaker/etc" {
		t.Errorf("the script does not overlay the pod's files on /etc and make every mount read-only: %q", got[5:8])
	}
	want := []string{"setpriv", "--reuid=0", "--regid=65532", "--clear-groups", "--bounding-set=-all,+net_raw", "--inh-caps=-all",
		"--no-new-privs", "--", "env", "-i", "A=1", "/etc/herald/bin/herald-speaker", "--x"}
	if diff := cmp.Diff(want, got[i:]); diff != "" {
		t.Errorf("setpriv (-want +got):\n%s", diff)
	}
	writable := sandboxArgs(Privileges{UID: 1}, "/e", nil, []string{"/x"})
	if strings.Contains(writable[5], "remount") || slices.Contains(writable, "--no-new-privs") {
		t.Errorf("a writable root with privilege escalation allowed got %q", writable)
	}
}

// TestLabRunsTheManifests brings the lab up as the manifests say (Options.Manifests)
// and checks every running controller and speaker against the rendered deploy/default:
// its command line, its whole environment, its user and group, its capability sets,
// no_new_privs and a read-only root. Then a Service gets an address and the client
// reaches a pod through it. It fails when the manifests and the lab disagree.
func TestLabRunsTheManifests(t *testing.T) {
	netlab.RequireCommands(t, "unshare", "setpriv", "awk", "env")
	l := New(t, Options{Manifests: true, Nodes: 2})

	check := func(name string, p *netlab.Process, w Workload, facts PodFacts, labFlags []string) {
		t.Helper()
		wantArgv, wantEnv, err := w.Command(facts)
		if err != nil {
			t.Fatal(err)
		}
		wantArgv = slices.Concat([]string{labBinaryDir + wantArgv[0]}, wantArgv[1:], labFlags)
		priv, err := w.Privileges()
		if err != nil {
			t.Fatal(err)
		}
		pid := p.Pid()
		if diff := cmp.Diff(wantArgv, procList(t, pid, "cmdline")); diff != "" {
			t.Errorf("%s: command line (-manifests +running):\n%s", name, diff)
		}
		if diff := cmp.Diff(wantEnv, procList(t, pid, "environ")); diff != "" {
			t.Errorf("%s: environment (-manifests +running):\n%s", name, diff)
		}
		status := procStatus(t, pid)
		wantCaps := capMask(t, priv.Capabilities)
		for _, f := range []struct{ key, want string }{
			{"Uid", fmt.Sprintf("%d\t%d\t%d\t%d", priv.UID, priv.UID, priv.UID, priv.UID)},
			{"Gid", fmt.Sprintf("%d\t%d\t%d\t%d", priv.GID, priv.GID, priv.GID, priv.GID)},
			{"Groups", ""},
			{"CapEff", wantCaps}, {"CapPrm", wantCaps}, {"CapBnd", wantCaps}, {"CapInh", capMask(t, nil)}, {"CapAmb", capMask(t, nil)},
			{"NoNewPrivs", map[bool]string{true: "1", false: "0"}[priv.NoNewPrivs]},
		} {
			if status[f.key] != f.want {
				t.Errorf("%s: %s is %q, the manifests say %q", name, f.key, status[f.key], f.want)
			}
		}
		if writable := writableMounts(t, pid); (len(writable) == 0) != priv.ReadOnlyRoot {
			t.Errorf("%s: writable mounts %q; the manifests say readOnlyRootFilesystem %v", name, writable, priv.ReadOnlyRoot)
		}
	}
	cp := l.Cluster.ControlPlane.Addr4().String()
	check("controller 0", l.Controller(0), l.workloads.Controller,
		PodFacts{Namespace: Namespace, Name: ControllerIdentity(0), NodeName: l.Cluster.Nodes[0].Name(), PodIP: cp, HostIP: cp},
		[]string{"--kubeconfig=/etc/herald/kubeconfig", "--metrics-bind-address=" + controllerMetrics(0)})
	for _, n := range l.Cluster.Nodes {
		a := n.Addr4().String()
		check("speaker on "+n.Name(), l.Speaker(n), l.workloads.Speaker,
			PodFacts{Namespace: Namespace, Name: SpeakerAccount + "-" + n.Name(), NodeName: n.Name(), PodIP: a, HostIP: a},
			[]string{"--kubeconfig=/etc/herald/kubeconfig", "--metrics-address=" + SpeakerMetrics})
	}

	l.Apply(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: manifests}
spec:
  addresses: ["198.51.100.131/32"]
---
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: manifests}
spec:
  ipPools: [manifests]
---
apiVersion: v1
kind: Service
metadata: {name: manifests, namespace: default}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
`)
	addrs := l.WaitAddresses("default", "manifests", 1, 30*time.Second)
	l.Backend("default", "manifests", WebPort, l.WebPods()...)
	reply := l.WaitConnect(addrs[0], 80, 30*time.Second, nil)
	t.Logf("the client reached pod %s through %v", reply.Pod, addrs[0])
}

// procList returns /proc/pid/<name> split at NULs (cmdline, environ).
func procList(t *testing.T, pid int, name string) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// procStatus returns /proc/pid/status's fields, values trimmed.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// capMask returns the capability set names as /proc/pid/status prints it.
func capMask(t *testing.T, caps []string) string {
	t.Helper()
	bits := map[string]uint{"net_raw": 13, "net_admin": 12, "net_bind_service": 10}
	var m uint64
	for _, c := range caps {
		b, ok := bits[c]
		if !ok {
			t.Fatalf("capability %s: add its number to capMask", c)
		}
		m |= 1 << b
	}
	return fmt.Sprintf("%016x", m)
}

// writableMounts returns the mounts pid sees that are not read-only (mountinfo's
// field 5, with its per-mount options in field 6), /dev/shm and /dev/pts aside.
func writableMounts(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	var writable []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[4] == "/dev/shm" || f[4] == "/dev/pts" { // writable in a container too
			continue
		}
		if !slices.Contains(strings.Split(f[5], ","), "ro") {
			writable = append(writable, line)
		}
	}
	return writable
}

// TestLabCanRunTheManifests renders deploy/default and checks that the lab can run
// each container as it says: a command from the downward API alone, privileges it can
// set, Secret volumes it can mount. A manifest change the lab cannot follow fails
// here before any lab is built.
func TestLabCanRunTheManifests(t *testing.T) {
	bins := controlplane.RequireBinaries(t, "")
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	w, err := RenderWorkloads(t.Context(), bins.Kubectl, filepath.Join(root, "deploy", "default"))
	if err != nil {
		t.Fatal(err)
	}
	facts := PodFacts{Namespace: Namespace, Name: "p", NodeName: "node1", PodIP: "198.51.100.11", HostIP: "198.51.100.11"}
	for _, tt := range []struct {
		name    string
		w       Workload
		priv    Privileges
		secrets map[string]string
	}{
		{"controller", w.Controller, Privileges{UID: 65532, GID: 65532, NoNewPrivs: true, ReadOnlyRoot: true}, map[string]string{}},
		{"speaker", w.Speaker, Privileges{UID: 0, GID: 65532, Capabilities: []string{"net_raw"}, NoNewPrivs: true, ReadOnlyRoot: true},
			map[string]string{MemberlistSecret: "herald/memberlist"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			argv, _, err := tt.w.Command(facts)
			if err != nil {
				t.Fatal(err)
			}
			var labFlags []string
			for _, f := range labOnlyFlags[path.Base(argv[0])] {
				labFlags = append(labFlags, f+"=x")
			}
			if _, err := labCommand(argv, "/cache/"+path.Base(argv[0]), labFlags, nil); err != nil {
				t.Error(err)
			}
			priv, err := tt.w.Privileges()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.priv, priv); diff != "" {
				t.Errorf("privileges (-want +got):\n%s", diff)
			}
			mounts, err := tt.w.secretMounts()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.secrets, mounts); diff != "" {
				t.Errorf("Secret mounts under /etc (-want +got):\n%s", diff)
			}
		})
	}
}
