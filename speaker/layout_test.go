package speaker

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the module path of Herald.
const module = "github.com/herald-dev/herald"

// rule says what one package must not import: Deps are import path
// prefixes forbidden among all its dependencies, Imports among its direct
// imports only. A prefix ending in "/" matches the packages under it; any
// other matches the path itself and its subpackages.
type rule struct{ Deps, Imports []string }

// forbiddenImports is the speaker's architecture, held by the import
// graph: package (relative to the module) -> what it must not import.
// docs/speaker.md draws it.
var forbiddenImports = map[string]rule{
	// The decisions: no client, socket, clock, log, metric or gossip; see
	// also TestDecideImportsOnlyTheStandardLibraryAndTheModel.
	"speaker/internal/decide": {Deps: []string{
		"k8s.io/client-go", "github.com/prometheus", "github.com/hashicorp", "github.com/osrg",
		"github.com/mdlayher", "golang.org/x/sys", module + "/speaker/", module + "/controller", module + "/ipam/",
	}},
	// The Kubernetes inputs read caches; they announce, gossip and report nothing.
	"speaker/internal/kubeinput": {Deps: []string{
		"github.com/prometheus", "github.com/hashicorp", "github.com/osrg", "github.com/mdlayher",
		module + "/speaker/layer2", module + "/speaker/bgp", module + "/speaker/internal/reconcile",
		module + "/speaker/internal/report", module + "/speaker/internal/membership", module + "/speaker/internal/probe",
	}},
	// The facade for tools re-exports the decisions and the summaries; it
	// announces, gossips, reports and watches nothing.
	"speaker/eligibility": {Deps: []string{
		"github.com/prometheus", "github.com/hashicorp", "github.com/osrg", "github.com/mdlayher",
		module + "/speaker/layer2", module + "/speaker/bgp", module + "/speaker/internal/reconcile",
		module + "/speaker/internal/report", module + "/speaker/internal/membership", module + "/speaker/internal/probe",
	}},
	// Membership gossips; it reads no Kubernetes object.
	"speaker/internal/membership": {Deps: []string{
		"k8s.io/client-go", "github.com/prometheus", "github.com/osrg", "github.com/mdlayher",
		module + "/speaker/layer2", module + "/speaker/bgp", module + "/speaker/internal/kubeinput",
		module + "/speaker/internal/reconcile", module + "/speaker/internal/report", module + "/speaker/internal/probe",
	}},
	// The fast failure detector speaks UDP to other speakers; it reads no
	// Kubernetes object and knows nothing of the speaker's other parts.
	"speaker/internal/heartbeat": {Deps: []string{
		"k8s.io/", "github.com/prometheus", "github.com/hashicorp", "github.com/osrg", "github.com/mdlayher",
		module + "/speaker/", module + "/config", module + "/controller", module + "/ipam/",
	}},
	// The kube-proxy probe speaks HTTP to its own node only.
	"speaker/internal/probe": {Deps: []string{
		"k8s.io/client-go", "github.com/prometheus", "github.com/hashicorp", "github.com/osrg", "github.com/mdlayher",
		module + "/speaker/layer2", module + "/speaker/bgp", module + "/speaker/internal/kubeinput",
		module + "/speaker/internal/reconcile", module + "/speaker/internal/report", module + "/speaker/internal/membership",
	}},
	// The reports write this node's record and export metrics; they
	// decide, watch and announce nothing.
	"speaker/internal/report": {Deps: []string{
		"k8s.io/client-go/informers", module + "/config/generated/clientset", "github.com/hashicorp", "github.com/osrg", module + "/speaker/bgp",
		module + "/speaker/internal/kubeinput", module + "/speaker/internal/reconcile",
		module + "/speaker/internal/membership", module + "/speaker/internal/probe",
	}},
	// The reconcile loop is handed its clients and informers (Deps): it
	// makes none.
	"speaker/internal/reconcile": {Imports: []string{
		"k8s.io/client-go/kubernetes", "k8s.io/client-go/informers", "k8s.io/client-go/rest", "k8s.io/client-go/tools/clientcmd",
		module + "/config/generated/clientset", module + "/config/generated/informers", module + "/speaker/internal/kubeclient",
	}},
	// The API client talks to the API server; it knows nothing of the
	// speaker's other parts and links no generated clientset (see also
	// TestSpeakerBinaryLinksNoClientset).
	"speaker/internal/kubeclient": {Deps: []string{
		"k8s.io/client-go/kubernetes", "k8s.io/client-go/informers", "k8s.io/client-go/discovery",
		"k8s.io/client-go/gentype", "k8s.io/client-go/tools/record", module + "/config/generated/clientset",
		"github.com/prometheus", "github.com/hashicorp", "github.com/osrg", "github.com/mdlayher",
		module + "/speaker/", module + "/controller", module + "/ipam/",
	}},
	// The event recorder writes Events through the sink it is handed; it
	// makes no client (client-go's recorder and its strategic merge patch
	// machinery stay out, see TestSpeakerBinaryLinksNoClientset), and
	// knows nothing of the speaker's other parts.
	"speaker/internal/events": {Deps: []string{
		"k8s.io/client-go", "github.com/prometheus", "github.com/hashicorp", "github.com/osrg", "github.com/mdlayher",
		"k8s.io/apimachinery/pkg/util/strategicpatch", module + "/speaker/", module + "/config", module + "/controller", module + "/ipam/",
	}},
	// The drain programs the node's netfilter and routes from the drains
	// decided; it reads, gossips and reports nothing.
	"speaker/internal/drain": {Deps: []string{
		"k8s.io/client-go", "github.com/prometheus", "github.com/hashicorp", "github.com/osrg",
		module + "/speaker/layer2", module + "/speaker/bgp", module + "/speaker/internal/kubeinput",
		module + "/speaker/internal/reconcile", module + "/speaker/internal/report", module + "/speaker/internal/membership",
		module + "/speaker/internal/probe", module + "/speaker/internal/heartbeat",
	}},
	// The announcers carry a desired state out; they know nothing of the speaker.
	"speaker/layer2": {Deps: []string{"k8s.io/", "github.com/prometheus", module + "/speaker", module + "/config"}},
	"speaker/bgp":    {Deps: []string{"k8s.io/client-go", "github.com/prometheus", module + "/speaker"}},
}

// TestLayout fails when a package imports, directly or not, what its
// place in the architecture forbids (docs/speaker.md draws it).
func TestLayout(t *testing.T) {
	var pkgs []string
	for p := range forbiddenImports {
		pkgs = append(pkgs, "./"+strings.TrimPrefix(p, "speaker/"))
	}
	slices.Sort(pkgs)
	cmd := exec.Command("go", append([]string{"list", "-deps=false", "-json=ImportPath,Imports,Deps"}, pkgs...)...)
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p struct {
			ImportPath    string
			Imports, Deps []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		forbidden, ok := forbiddenImports[rel]
		if !ok {
			t.Errorf("go list returned %s, which the table does not list", p.ImportPath)
			continue
		}
		seen++
		for _, dep := range p.Deps {
			if prefix, bad := forbiddenBy(dep, forbidden.Deps); bad {
				t.Errorf("%s depends on %s (forbidden: %s)", rel, dep, prefix)
			}
		}
		for _, imp := range p.Imports {
			if prefix, bad := forbiddenBy(imp, forbidden.Imports); bad {
				t.Errorf("%s imports %s (forbidden: %s)", rel, imp, prefix)
			}
		}
	}
	if seen != len(forbiddenImports) {
		t.Errorf("go list described %d packages, want %d", seen, len(forbiddenImports))
	}
}

// forbiddenBy returns the prefix of forbidden that dep falls under.
func forbiddenBy(dep string, forbidden []string) (string, bool) {
	for _, f := range forbidden {
		if strings.HasSuffix(f, "/") {
			if strings.HasPrefix(dep, f) {
				return f, true
			}
			continue
		}
		if dep == f || strings.HasPrefix(dep, f+"/") {
			return f, true
		}
	}
	return "", false
}

// TestDecideImportsOnlyTheStandardLibraryAndTheModel checks the pure
// package's direct imports against an allow list: the standard library
// (but for the packages that reach the host: files, processes, sockets,
// logs), go4.org/netipx and Herald's configuration model.
func TestDecideImportsOnlyTheStandardLibraryAndTheModel(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "./internal/decide").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	hostAccess := []string{"os", "os/exec", "os/signal", "syscall", "net/http", "log", "log/slog", "unsafe", "runtime/cgo"}
	allowed := func(p string) bool {
		first, _, _ := strings.Cut(p, "/")
		std := !strings.Contains(first, ".")
		return (std && !slices.Contains(hostAccess, p)) || p == "go4.org/netipx" || p == module+"/config"
	}
	for _, p := range strings.Fields(string(out)) {
		if !allowed(p) {
			t.Errorf("speaker/internal/decide imports %s: only the standard library, go4.org/netipx and %s/config may be imported", p, module)
		}
	}
}

// TestSpeakerBinaryLinksNoClientset fails when the speaker's executable
// links client-go's generated clientset, informers or discovery client
// again, Herald's generated clientset or informers, or a Kubernetes API
// group besides the two it reads: they bring every API group's types and
// the OpenAPI machinery, some 30 MB of executable that every speaker
// process maps and mostly touches (package internal/kubeclient is the
// speaker's narrow client;
// docs/figures.md#speaker-memory-at-10000-services-issue-18). It also
// fails when the speaker links what brings the OpenAPI machinery back
// through a side door: client-go's event recorder (tools/record, whose
// correlator builds strategic merge patches: internal/events is the
// speaker's recorder), client-go's gentype (which Herald's typed clients
// are built on: it links client-go's fake-client tracker and managed
// fields), the strategic merge patch and managed fields packages
// themselves, kube-openapi's schema packages and gnostic's OpenAPI
// descriptors.
func TestSpeakerBinaryLinksNoClientset(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../cmd/herald-speaker").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"k8s.io/client-go/kubernetes", "k8s.io/client-go/informers", "k8s.io/client-go/discovery",
		"k8s.io/client-go/applyconfigurations", "k8s.io/client-go/openapi", module + "/config/generated/informers",
		module + "/config/generated/clientset",
		"k8s.io/client-go/tools/record", "k8s.io/client-go/gentype", "k8s.io/client-go/testing",
		"k8s.io/apimachinery/pkg/util/strategicpatch", "k8s.io/apimachinery/pkg/util/managedfields",
		"github.com/google/gnostic-models/", "k8s.io/kube-openapi/", "github.com/go-openapi/",
	}
	// apimachinery's runtime package imports kube-openapi's small util
	// package (type names), which no schema comes with.
	allowed := []string{"k8s.io/kube-openapi/pkg/util"}
	apiGroups := []string{"k8s.io/api/core/v1", "k8s.io/api/discovery/v1"}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"/speaker") {
		t.Fatalf("go list -deps ../cmd/herald-speaker does not list %s/speaker: is the binary still there?", module)
	}
	for _, dep := range deps {
		if prefix, bad := forbiddenBy(dep, forbidden); bad && !slices.Contains(allowed, dep) {
			t.Errorf("the speaker's binary links %s (forbidden: %s)", dep, prefix)
		}
		if strings.HasPrefix(dep, "k8s.io/api/") && !slices.Contains(apiGroups, dep) {
			t.Errorf("the speaker's binary links the API group %s; it reads only %q", dep, apiGroups)
		}
	}
}
