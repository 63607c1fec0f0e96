package controller

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
)

const controllerPackage = "github.com/herald-dev/herald/cmd/herald-controller"

// replica is a herald-controller process, running as its own apiserver user.
type replica struct {
	name        string // the user and the Lease identity
	metricsAddr string
	cmd         *exec.Cmd
	logPath     string
	done        chan struct{}
	err         error
}

// startReplica runs the herald-controller binary as user (which must be
// allowed to do everything, see grantAdmin), with leader election.
func startReplica(t *testing.T, cp *controlplane.ControlPlane, bin, user string, extra ...string) *replica {
	t.Helper()
	cfg, err := cp.UserConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	return startReplicaWith(t, cfg, bin, user, extra...)
}

// startReplicaWith runs the herald-controller binary with the client
// configuration cfg (a user's, or a service account's token), named name in
// the Lease.
func startReplicaWith(t *testing.T, cfg *rest.Config, bin, name string, extra ...string) *replica {
	t.Helper()
	user := name
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := controlplane.WriteKubeconfig(kubeconfig, cfg); err != nil {
		t.Fatal(err)
	}
	r := &replica{name: user, metricsAddr: freeAddr(t), logPath: filepath.Join(dir, "controller.log"), done: make(chan struct{})}
	logFile, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect-identity=" + user,
		"--leader-elect-lease-namespace=herald-system",
		"--namespace=herald-system",
		"--metrics-bind-address=" + r.metricsAddr,
		"--log-format=text",
		"--log-level=debug",
	}, extra...)
	r.cmd = exec.Command(bin, args...)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		logFile.Close()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.signal(syscall.SIGKILL)
		<-r.done
		if t.Failed() {
			t.Logf("log of replica %s:\n%s", r.name, tail(r.logPath, 40))
		}
	})
	return r
}

func (r *replica) signal(sig syscall.Signal) {
	select {
	case <-r.done:
	default:
		_ = syscall.Kill(-r.cmd.Process.Pid, sig)
	}
}

// stop sends SIGTERM and waits for the process to exit.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	r.signal(syscall.SIGTERM)
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("replica %s exited with %v after SIGTERM", r.name, r.err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("replica %s did not exit on SIGTERM", r.name)
	}
}

// kill kills the process without warning, as a crashed node would.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	r.signal(syscall.SIGKILL)
	<-r.done
}

// get fetches a path of the replica's metrics endpoint.
func (r *replica) get(path string) (int, string, error) {
	resp, err := http.Get("http://" + r.metricsAddr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metric returns the value of an unlabelled sample from /metrics.
func (r *replica) metric(name string) (float64, error) {
	_, body, err := r.get("/metrics")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// buildController builds the herald-controller binary once per test run.
func buildController(t *testing.T) string {
	t.Helper()
	return netlab.BuildGo(t, controllerPackage)
}

// grantControllerRBAC installs the controller's ClusterRole and Role from
// deploy/controller/rbac.yaml and binds them to users, so that each replica
// runs with exactly the deployment's permissions under its own identity in
// the audit log.
func (e *env) grantControllerRBAC(t *testing.T, users ...string) {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "controller", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var subjects []rbacv1.Subject
	for _, u := range users {
		subjects = append(subjects, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: "User", Name: u})
	}
	for _, doc := range controlplane.SplitYAML(data) {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode rbac.yaml: %v", err)
		}
		switch o := obj.(type) {
		case *rbacv1.ClusterRole:
			if _, err := e.kube.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: o.Name + "-test"}, Subjects: subjects,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: o.Name}}
			if _, err := e.kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		case *rbacv1.Role:
			if _, err := e.kube.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: o.Name + "-test", Namespace: o.Namespace}, Subjects: subjects,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: o.Name}}
			if _, err := e.kube.RbacV1().RoleBindings(o.Namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// auditOptions makes the apiserver log every write request (who, what) to
// a file, so a test can tell which replica wrote.
func auditOptions(t *testing.T) (controlplane.Options, string) {
	t.Helper()
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "audit.log")
	return controlplane.Options{ExtraAPIServerArgs: []string{
		"--audit-policy-file=" + policy, "--audit-log-path=" + log, "--audit-log-mode=blocking",
	}}, log
}

// auditWrite is one write request from the audit log.
type auditWrite struct {
	User        string
	Verb        string
	Resource    string
	Subresource string
	Namespace   string
	Name        string
	Code        int
}

func (w auditWrite) String() string {
	return fmt.Sprintf("%s %s %s/%s %s/%s -> %d", w.User, w.Verb, w.Resource, w.Subresource, w.Namespace, w.Name, w.Code)
}

// auditWrites reads every write request logged so far.
func auditWrites(t *testing.T, path string) []auditWrite {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditWrite
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev struct {
			Stage string `json:"stage"`
			Verb  string `json:"verb"`
			User  struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef struct {
				Resource    string `json:"resource"`
				Subresource string `json:"subresource"`
				Namespace   string `json:"namespace"`
				Name        string `json:"name"`
			} `json:"objectRef"`
			ResponseStatus struct {
				Code int `json:"code"`
			} `json:"responseStatus"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit log line %q: %v", sc.Text(), err)
		}
		if ev.Stage != "ResponseComplete" {
			continue
		}
		out = append(out, auditWrite{ev.User.Username, ev.Verb, ev.ObjectRef.Resource, ev.ObjectRef.Subresource,
			ev.ObjectRef.Namespace, ev.ObjectRef.Name, ev.ResponseStatus.Code})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
