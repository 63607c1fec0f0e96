package productlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// No kubelet runs in the lab yet (docs/testing.md, "Why no kubelet runs (yet)": on
// this cgroup v1 machine it can, with failCgroupV1 false, but the per-node runtime
// is not built). With Options.Manifests the lab runs
// each binary as a kubelet would run the container of the rendered deploy/default:
// the container's command and arguments, its environment (downward-API fields
// resolved, $(VAR) expanded), its user and group, its capability set, no new
// privileges, and a read-only root filesystem, in a mount namespace of its own.
// What differs is listed in labOnlyFlags and labBinaryDir.

// Workload is one container of the rendered manifests with its Pod's spec.
type Workload struct {
	Pod       corev1.PodSpec
	Container corev1.Container
}

// Workloads are the controller's and the speaker's containers of deploy/default.
type Workloads struct {
	Controller, Speaker Workload
}

// RenderWorkloads renders dir (deploy/default) with kubectl and returns the
// herald-controller Deployment's and the herald-speaker DaemonSet's first container.
func RenderWorkloads(ctx context.Context, kubectl, dir string) (Workloads, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Workloads{}, fmt.Errorf("productlab: kubectl kustomize %s: %w\n%s", dir, err, &stderr)
	}
	return workloadsOf(out)
}

// workloadsOf finds the controller and the speaker in a rendered YAML stream.
func workloadsOf(rendered []byte) (Workloads, error) {
	var w Workloads
	found := map[string]bool{}
	objs, err := decodeRendered(rendered)
	if err != nil {
		return Workloads{}, fmt.Errorf("productlab: %w", err)
	}
	for _, u := range objs {
		var spec corev1.PodSpec
		switch {
		case u.GetKind() == "Deployment" && u.GetName() == "herald-controller":
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
				return Workloads{}, fmt.Errorf("productlab: %s: %w", u.GetName(), err)
			}
			spec = d.Spec.Template.Spec
		case u.GetKind() == "DaemonSet" && u.GetName() == "herald-speaker":
			var d appsv1.DaemonSet
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
				return Workloads{}, fmt.Errorf("productlab: %s: %w", u.GetName(), err)
			}
			spec = d.Spec.Template.Spec
		default:
			continue
		}
		if len(spec.Containers) != 1 {
			return Workloads{}, fmt.Errorf("productlab: %s %s has %d containers, want 1", u.GetKind(), u.GetName(), len(spec.Containers))
		}
		wl := Workload{Pod: spec, Container: spec.Containers[0]}
		if u.GetKind() == "Deployment" {
			w.Controller = wl
		} else {
			w.Speaker = wl
		}
		found[u.GetKind()] = true
	}
	if !found["Deployment"] || !found["DaemonSet"] {
		return Workloads{}, errors.New("productlab: the rendered manifests hold no herald-controller Deployment or herald-speaker DaemonSet")
	}
	return w, nil
}

// PodFacts are what the kubelet knows of a Pod and hands to its containers through
// the downward API.
type PodFacts struct {
	Namespace, Name, NodeName, PodIP, HostIP string
}

// fieldValue returns the downward-API field path's value.
func (f PodFacts) fieldValue(path string) (string, error) {
	switch path {
	case "metadata.namespace":
		return f.Namespace, nil
	case "metadata.name":
		return f.Name, nil
	case "spec.nodeName":
		return f.NodeName, nil
	case "status.podIP":
		return f.PodIP, nil
	case "status.hostIP":
		return f.HostIP, nil
	}
	return "", fmt.Errorf("productlab: the lab does not provide the downward-API field %s", path)
}

// varRef matches $(NAME) and the escape $$.
var varRef = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expand replaces $(NAME) with vars[NAME] as the kubelet does: an unknown name is
// left as written, and $$ stands for $.
func expand(s string, vars map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := vars[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// Command returns the container's command line and environment (NAME=value, in the
// manifest's order) as the kubelet starts it for a Pod with facts f. Values from
// anything but the downward API are an error: the manifests use no other.
func (w Workload) Command(f PodFacts) (argv, env []string, err error) {
	vars := map[string]string{}
	for _, e := range w.Container.Env {
		v := expand(e.Value, vars)
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return nil, nil, fmt.Errorf("productlab: %s: env %s: only fieldRef values are supported", w.Container.Name, e.Name)
			}
			if v, err = f.fieldValue(e.ValueFrom.FieldRef.FieldPath); err != nil {
				return nil, nil, err
			}
		}
		vars[e.Name] = v
		env = append(env, e.Name+"="+v)
	}
	if len(w.Container.Command) == 0 {
		return nil, nil, fmt.Errorf("productlab: %s names no command", w.Container.Name)
	}
	for _, a := range slices.Concat(w.Container.Command, w.Container.Args) {
		argv = append(argv, expand(a, vars))
	}
	return argv, env, nil
}

// Privileges are what the container's security context gives its process.
type Privileges struct {
	UID, GID int64
	// Capabilities are the capabilities kept (lower case, without CAP_), sorted: the
	// bounding set, and for root the permitted and effective sets too.
	Capabilities []string
	// NoNewPrivs is allowPrivilegeEscalation: false.
	NoNewPrivs bool
	// ReadOnlyRoot is readOnlyRootFilesystem: true.
	ReadOnlyRoot bool
}

// Privileges returns the container's user, group and capabilities, its own security
// context overriding its Pod's. The image's user (65532:65532) applies when neither
// names one. Only `drop: [ALL]` with an explicit add list is supported: that is what
// the manifests use, and anything else would need the runtime's default set.
func (w Workload) Privileges() (Privileges, error) {
	p := Privileges{UID: 65532, GID: 65532}
	if sc := w.Pod.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			p.UID = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			p.GID = *sc.RunAsGroup
		}
	}
	sc := w.Container.SecurityContext
	if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		return Privileges{}, fmt.Errorf("productlab: %s: the lab runs containers that drop ALL capabilities only", w.Container.Name)
	}
	if sc.RunAsUser != nil {
		p.UID = *sc.RunAsUser
	}
	if sc.RunAsGroup != nil {
		p.GID = *sc.RunAsGroup
	}
	for _, c := range sc.Capabilities.Add {
		p.Capabilities = append(p.Capabilities, strings.ToLower(strings.TrimPrefix(string(c), "CAP_")))
	}
	slices.Sort(p.Capabilities)
	p.NoNewPrivs = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	p.ReadOnlyRoot = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	return p, nil
}

// secretMounts returns, for each Secret volume the container mounts, where under
// /etc it goes (relative to /etc), by Secret name. The lab can only mount under /etc
// (see labBinaryDir), with the manifests' defaultMode 0400, whole Secrets: anything
// else is an error.
func (w Workload) secretMounts() (map[string]string, error) {
	out := map[string]string{}
	for _, m := range w.Container.VolumeMounts {
		i := slices.IndexFunc(w.Pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 || w.Pod.Volumes[i].Secret == nil {
			return nil, fmt.Errorf("productlab: %s mounts %s, which is no Secret volume: the lab mounts Secrets only", w.Container.Name, m.Name)
		}
		v := w.Pod.Volumes[i].Secret
		rel, ok := strings.CutPrefix(m.MountPath, "/etc/")
		if !ok || m.SubPath != "" || len(v.Items) > 0 || v.DefaultMode == nil || *v.DefaultMode != 0o400 {
			return nil, fmt.Errorf("productlab: %s mounts the Secret %s at %s: the lab mounts whole Secrets, mode 0400, under /etc only",
				w.Container.Name, v.SecretName, m.MountPath)
		}
		out[v.SecretName] = rel
	}
	return out, nil
}

// labBinaryDir is where, inside a sandboxed process's mount namespace, the lab puts
// the binaries and the files the kubelet would mount: an overlay on /etc (the
// manifests' command /herald-controller becomes /etc/herald/bin/herald-controller,
// because the lab cannot put a file at the machine's root).
const labBinaryDir = "/etc/herald/bin"

// labOnlyFlags are the flags the lab adds to the manifests' arguments, by binary:
// the kubeconfig (no service-account volume: the token is bound to a Pod object all
// the same) and the metrics address (the lab's replicas share one network namespace
// and its probes use the loopback).
var labOnlyFlags = map[string][]string{
	"herald-controller": {"--kubeconfig", "--metrics-bind-address"},
	"herald-speaker":    {"--kubeconfig", "--metrics-address"},
}

// sandboxArgs returns the command line that runs argv with p in a mount namespace of
// its own: etcLower (a directory holding herald/...) overlaid on /etc, every mount
// made read-only when p.ReadOnlyRoot, then setpriv with p's user, group, capability
// bounding set and no_new_privs, and env as the whole environment.
func sandboxArgs(p Privileges, etcLower string, env, argv []string) []string {
	var script strings.Builder
	script.WriteString("set -e\nmount --make-rprivate /\n")
	script.WriteString("mount -t overlay overlay -o lowerdir=\"$1\":/etc /etc\n")
	if p.ReadOnlyRoot {
		// Every mount point, the overlay included, in mount order ($5 of mountinfo),
		// but /dev/shm and /dev/pts, which a container runtime leaves writable under
		// readOnlyRootFilesystem too.
		script.WriteString("for m in $(awk '{print $5}' /proc/self/mountinfo); do\n" +
			"  case \"$m\" in /dev/shm|/dev/pts) continue;; esac\n" +
			"  mount -o remount,bind,ro \"$m\"\ndone\n")
	}
	script.WriteString("shift\nexec \"$@\"\n")
	caps := "-all"
	for _, c := range p.Capabilities {
		caps += ",+" + c
	}
	args := []string{"unshare", "--mount", "--", "sh", "-c", script.String(), "sandbox", etcLower,
		"setpriv", "--reuid=" + strconv.FormatInt(p.UID, 10), "--regid=" + strconv.FormatInt(p.GID, 10), "--clear-groups",
		"--bounding-set=" + caps, "--inh-caps=-all"}
	if p.NoNewPrivs {
		args = append(args, "--no-new-privs")
	}
	args = append(args, "--", "env", "-i")
	args = append(args, env...)
	return append(args, argv...)
}

// labCommand returns the manifests' command line as the lab runs it: the binary at
// labBinaryDir (binary, the lab's build, must be of that name), the manifests'
// arguments, labFlags, and the test's extra flags. Each of labFlags must be one of
// labOnlyFlags for that binary and absent from the manifests' arguments: the lab adds
// what the manifests leave to the kubelet, and never overrides them.
func labCommand(argv []string, binary string, labFlags, extra []string) ([]string, error) {
	name := path.Base(argv[0])
	if b := filepath.Base(binary); b != name && !strings.HasPrefix(b, name+"-") {
		return nil, fmt.Errorf("productlab: the manifests run %s, the lab built %s", argv[0], binary)
	}
	for _, f := range labFlags {
		flag, _, _ := strings.Cut(f, "=")
		if !slices.Contains(labOnlyFlags[name], flag) {
			return nil, fmt.Errorf("productlab: %s is not one of the flags the lab may add to %s (%v)", flag, name, labOnlyFlags[name])
		}
		for _, a := range argv[1:] {
			if manifestFlag, _, _ := strings.Cut(a, "="); manifestFlag == flag {
				return nil, fmt.Errorf("productlab: the lab would override the manifests' %s with %s", a, f)
			}
		}
	}
	return slices.Concat([]string{path.Join(labBinaryDir, name)}, argv[1:], labFlags, extra), nil
}
