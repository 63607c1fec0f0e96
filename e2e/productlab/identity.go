package productlab

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
)

// SpeakerAccount is the speakers' ServiceAccount in Namespace, as deploy/speaker
// names it.
const SpeakerAccount = "herald-speaker"

// minTokenLifetime is the shortest validity the lab accepts for a speaker's token:
// the speakers never renew it (the kubeconfig holds the token itself, not a file the
// kubelet rotates), so it must outlast the longest run, the 30-minute soak, with
// room to spare.
const minTokenLifetime = 2 * time.Hour

// identityKinds are the kinds of deploy/speaker and deploy/controller that make up
// a component's identity: its ServiceAccount, its RBAC, and the admission policies on
// its writes. The workloads and the metrics Services are left out: the lab runs the
// binaries itself.
var identityKinds = map[string]bool{
	"ServiceAccount": true, "ClusterRole": true, "ClusterRoleBinding": true, "Role": true, "RoleBinding": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
}

// installIdentity applies a component's (deploy/<component>) ServiceAccount, RBAC and
// admission policies exactly as `kubectl kustomize` renders them, so the lab's
// binaries run with the permissions a cluster gives them.
func (l *Lab) installIdentity(component string) {
	l.T.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		l.T.Fatalf("productlab: %v", err)
	}
	dir := filepath.Join(root, "deploy", component)
	var stderr bytes.Buffer
	cmd := l.CP.Kubectl(l.T.Context(), "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		l.T.Fatalf("productlab: kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	docs, err := identityDocuments(out)
	if err != nil {
		l.T.Fatalf("productlab: %s: %v", dir, err)
	}
	l.Apply(strings.Join(docs, "\n---\n"))
}

// identityDocuments returns, as JSON documents, the objects of rendered (kustomize's
// YAML stream) whose kind is one of identityKinds.
func identityDocuments(rendered []byte) ([]string, error) {
	objs, err := decodeRendered(rendered)
	if err != nil {
		return nil, err
	}
	var docs []string
	for _, obj := range objs {
		if !identityKinds[obj.GetKind()] {
			continue
		}
		b, err := json.Marshal(obj.Object)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		docs = append(docs, string(b))
	}
	if len(docs) == 0 {
		return nil, errors.New("no ServiceAccount, RBAC or admission policy rendered")
	}
	return docs, nil
}

// decodeRendered returns the objects of rendered, kustomize's YAML stream, in order.
func decodeRendered(rendered []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(rendered), 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode the rendered manifests: %w", err)
		}
		objs = append(objs, obj)
	}
}

// SpeakerConfig returns the client configuration of n's speaker, reaching the
// apiserver from the test process: the speaker's ServiceAccount with a token bound to
// a Pod on n, as the kubelet mounts it. The token is made once per node, with the
// Pod herald-speaker-<node> in Namespace (no kubelet runs it; it anchors the token to
// the node), and StartSpeaker hands the same token to the speaker.
func (l *Lab) SpeakerConfig(n *netlab.Node) *rest.Config {
	l.T.Helper()
	cfg, _ := l.speakerIdentity(n)
	return rest.CopyConfig(cfg)
}

// speakerIdentity returns n's speaker token configuration and the path of a
// kubeconfig holding it that reaches the apiserver through the lab, making both the
// first time.
func (l *Lab) speakerIdentity(n *netlab.Node) (*rest.Config, string) {
	l.T.Helper()
	l.mu.Lock()
	id, ok := l.identities[n.Name()]
	l.mu.Unlock()
	if ok {
		return id.config, id.kubeconfig
	}
	cfg, err := l.CP.PodBoundServiceAccountConfig(l.T.Context(), Namespace, SpeakerAccount, n.Name())
	if err != nil {
		l.T.Fatalf("productlab: speaker token for %s: %v", n.Name(), err)
	}
	lifetime, err := tokenLifetime(cfg.BearerToken)
	if err != nil {
		l.T.Fatalf("productlab: speaker token for %s: %v", n.Name(), err)
	}
	if lifetime < minTokenLifetime {
		l.T.Fatalf("productlab: the apiserver issued %s's speaker a token valid for %v, want at least %v "+
			"(a capped --service-account-max-token-expiration?)", n.Name(), lifetime, minTokenLifetime)
	}
	path := filepath.Join(l.opts.Dir, "speaker-"+n.Name()+".kubeconfig")
	if err := l.Cluster.WriteKubeconfig(path, cfg); err != nil {
		l.T.Fatalf("productlab: %v", err)
	}
	l.mu.Lock()
	l.identities[n.Name()] = speakerIdentity{config: cfg, kubeconfig: path}
	l.mu.Unlock()
	return cfg, path
}

// speakerIdentity is one node's speaker token, as a client configuration and as a
// kubeconfig file for the lab.
type speakerIdentity struct {
	config     *rest.Config
	kubeconfig string
}

// tokenLifetime returns how long a service-account token (a JWT) is valid from its
// issue: its exp claim minus its iat claim. The token's signature is not checked; the
// apiserver that issued it is the one that will.
func tokenLifetime(token string) (time.Duration, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0, fmt.Errorf("token is not a JWT (%d parts)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0, fmt.Errorf("token payload: %w", err)
	}
	var claims struct {
		IssuedAt  int64 `json:"iat"`
		ExpiresAt int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return 0, fmt.Errorf("token claims: %w", err)
	}
	if claims.ExpiresAt == 0 || claims.IssuedAt == 0 {
		return 0, errors.New("token has no iat or exp claim")
	}
	return time.Duration(claims.ExpiresAt-claims.IssuedAt) * time.Second, nil
}
