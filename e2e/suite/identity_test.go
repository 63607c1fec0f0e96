package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

func init() { register(5, "speaker identity", testSpeakerIdentity) }

// statusPolicy is the ValidatingAdmissionPolicy of deploy/speaker/status-policy.yaml.
const statusPolicy = "herald-speakerstatus-writers"

// testSpeakerIdentity checks that the lab's speakers run as speakers do in a cluster (the
// ServiceAccount of deploy/speaker, a token bound to a Pod on their node) and still
// report, and that what a compromised node gets with its speaker's token is nothing:
// it cannot write another node's SpeakerStatus, nor create a record for a node that
// does not exist.
func testSpeakerIdentity(t *testing.T, l *productlab.Lab) {
	node1, node2 := l.Cluster.Node(1), l.Cluster.Node(2)

	t.Run("each speaker's token names its node", func(t *testing.T) {
		for _, n := range l.Cluster.Nodes {
			review, err := kubernetes.NewForConfigOrDie(l.SpeakerConfig(n)).AuthenticationV1().SelfSubjectReviews().
				Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			u := review.Status.UserInfo
			if want := "system:serviceaccount:" + productlab.Namespace + ":" + productlab.SpeakerAccount; u.Username != want {
				t.Errorf("%s's speaker authenticates as %q, want %q", n.Name(), u.Username, want)
			}
			if got := u.Extra["authentication.kubernetes.io/node-name"]; !slices.Equal(got, []string{n.Name()}) {
				t.Errorf("%s's speaker token names node %q, want [%s]", n.Name(), got, n.Name())
			}
		}
	})

	t.Run("each speaker writes its own record", func(t *testing.T) {
		for _, n := range l.Cluster.Nodes {
			netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
				rec, err := l.Herald.HeraldV1alpha1().SpeakerStatuses().Get(ctx, n.Name(), metav1.GetOptions{})
				if err != nil {
					return err
				}
				if !meta.IsStatusConditionTrue(rec.Status.Conditions, v1alpha1.ConditionReady) {
					return fmt.Errorf("%s's record is not ready: %+v", n.Name(), rec.Status.Conditions)
				}
				return nil
			})
		}
	})

	t.Run("a speaker's token cannot write another node's record", func(t *testing.T) {
		attacker := heraldclient.NewForConfigOrDie(l.SpeakerConfig(node1))
		const forged = "203.0.113.77"
		running := map[string]any{
			"conditions": []metav1.Condition{{
				Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.SpeakerReasonRunning,
				Message: "forged by " + node1.Name(), LastTransitionTime: metav1.Now(),
			}},
			"layer2":          []v1alpha1.Layer2Announcement{{Address: forged, Service: "default/forged", Interfaces: []string{"eth0"}, Since: metav1.Now()}},
			"layer2Addresses": 1,
		}
		// The policy is loaded asynchronously after the lab installed it: wait
		// until it refuses, then check that nothing got through meanwhile.
		netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
			return refusedByPolicy(patchSpeakerStatus(ctx, attacker, node2.Name(), running))
		})
		if err := refusedByPolicy(patchSpeakerStatus(t.Context(), attacker, node2.Name(), map[string]any{"members": 7})); err != nil {
			t.Errorf("%s rewrites %s's member count: %v", node1.Name(), node2.Name(), err)
		}
		_, err := attacker.HeraldV1alpha1().SpeakerStatuses().Create(t.Context(),
			&v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: "node9"}}, metav1.CreateOptions{FieldManager: "herald-speaker"})
		if err := refusedByPolicy(err); err != nil {
			t.Errorf("%s creates node9's record: %v", node1.Name(), err)
		}
		if err := attacker.HeraldV1alpha1().SpeakerStatuses().Delete(t.Context(), node2.Name(), metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("%s deletes %s's record: want 403 Forbidden, got %v", node1.Name(), node2.Name(), err)
		}

		rec, err := l.Herald.HeraldV1alpha1().SpeakerStatuses().Get(t.Context(), node2.Name(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range rec.Status.Layer2 {
			if a.Address == forged {
				t.Errorf("%s's record lists the forged announcement %+v", node2.Name(), a)
			}
		}
		for _, c := range rec.Status.Conditions {
			if strings.Contains(c.Message, "forged") {
				t.Errorf("%s's record carries the forged condition %+v", node2.Name(), c)
			}
		}
		if _, err := l.Herald.HeraldV1alpha1().SpeakerStatuses().Get(t.Context(), "node9", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("node9's record exists after all (%v)", err)
		}
	})

	t.Run("speakers read Secrets by name: a Role narrowed to the password Secrets is enough", func(t *testing.T) {
		testSecretsByName(t, l.For(t))
	})
}

// testSecretsByName narrows the speakers' Role to the password Secrets of two BGPPeers
// (resourceNames, as docs/security.md tells operators), then checks that each speaker
// still reads its own peer's password, which it can only do by listing and watching
// that one name, and that a speaker's token reads no other Secret of Herald's
// namespace: not the gossip key, and no list of them all. RBAC cannot tell the
// speakers of two nodes apart (one ServiceAccount), so node1's token may read
// node2's peer's password; node1's speaker just never asks for it.
func testSecretsByName(t *testing.T, l *productlab.Lab) {
	ctx := t.Context()
	node1, node2 := l.Cluster.Node(1), l.Cluster.Node(2)
	secretOf := func(n *netlab.Node) string { return "identity-" + n.Name() + "-password" }
	peerOf := func(n *netlab.Node) string { return "identity-" + n.Name() }

	roles := l.Kube.RbacV1().Roles(productlab.Namespace)
	shipped, err := roles.Get(ctx, productlab.SpeakerAccount, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		role, err := roles.Get(context.Background(), productlab.SpeakerAccount, metav1.GetOptions{})
		if err == nil {
			role.Rules = shipped.Rules
			_, err = roles.Update(context.Background(), role, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Errorf("restore the speakers' Role: %v", err)
		}
	})
	narrowed := shipped.DeepCopy()
	narrowed.Rules = []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"},
		ResourceNames: []string{secretOf(node1), secretOf(node2)},
	}}
	if _, err := roles.Update(ctx, narrowed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	speaker := kubernetes.NewForConfigOrDie(l.SpeakerConfig(node1)).CoreV1().Secrets(productlab.Namespace)
	netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		if _, err := speaker.List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			return fmt.Errorf("the narrowed Role is not in force yet: listing every Secret: %v", err)
		}
		return nil
	})
	// A speaker started before kept the watches it opened under the shipped
	// Role; node1's starts again under the narrowed one, so what it reads
	// below it read by name.
	l.StopSpeaker(node1)
	l.StartSpeaker(node1)
	l.WaitSpeakerReady(node1)

	var objects []string
	for i, n := range []*netlab.Node{node1, node2} {
		objects = append(objects, fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: %[1]s, namespace: %[2]s}
stringData: {password: identity-%[4]d}
---
apiVersion: herald.dev/v1alpha1
kind: BGPPeer
metadata: {name: %[3]s}
spec:
  peerAddress: "203.0.113.%[4]d"
  peerASN: 64512
  myASN: 64513
  passwordSecretRef: {name: %[1]s}
  nodeSelectors: [{matchLabels: {kubernetes.io/hostname: %[5]s}}]
`, secretOf(n), productlab.Namespace, peerOf(n), 201+i, n.Name()))
	}
	t.Cleanup(func() {
		if out, err := l.Kubectl("delete", "--ignore-not-found", "bgppeer/"+peerOf(node1), "bgppeer/"+peerOf(node2)); err != nil {
			t.Errorf("clean up: %v\n%s", err, out)
		}
		if out, err := l.Kubectl("delete", "--ignore-not-found", "-n", productlab.Namespace, "secret/"+secretOf(node1), "secret/"+secretOf(node2)); err != nil {
			t.Errorf("clean up: %v\n%s", err, out)
		}
	})
	l.Apply(strings.Join(objects, "\n---\n"))

	// Each speaker reads its own peer's password under the narrowed Role: its
	// session is configured (it dials a router that does not exist), not
	// NotConfigured for a missing Secret.
	for _, n := range []*netlab.Node{node1, node2} {
		netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
			rec, err := l.Herald.HeraldV1alpha1().SpeakerStatuses().Get(ctx, n.Name(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, s := range rec.Status.BGPSessions {
				if s.Peer == peerOf(n) {
					if s.State == "NotConfigured" {
						return fmt.Errorf("%s's session with %s is not configured: %s", n.Name(), s.Peer, s.LastError)
					}
					return nil
				}
			}
			return fmt.Errorf("%s's record lists no session with %s: %+v", n.Name(), peerOf(n), rec.Status.BGPSessions)
		})
	}

	byName := metav1.ListOptions{FieldSelector: "metadata.name=" + secretOf(node1)}
	if _, err := speaker.List(ctx, byName); err != nil {
		t.Errorf("%s's token lists its peer's Secret by name: %v", node1.Name(), err)
	}
	if w, err := speaker.Watch(ctx, byName); err != nil {
		t.Errorf("%s's token watches its peer's Secret by name: %v", node1.Name(), err)
	} else {
		w.Stop()
	}
	forbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s's token %s: want 403 Forbidden, got %v", node1.Name(), what, err)
		}
	}
	_, err = speaker.Get(ctx, "herald-memberlist", metav1.GetOptions{})
	forbidden("reads the gossip key herald-memberlist", err)
	_, err = speaker.List(ctx, metav1.ListOptions{})
	forbidden("lists every Secret", err)
	_, err = speaker.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=herald-memberlist"})
	forbidden("lists the gossip key by name", err)
	_, err = speaker.Watch(ctx, metav1.ListOptions{})
	forbidden("watches every Secret", err)
}

// refusedByPolicy returns nil when err is the status policy's refusal, and an error
// saying what happened instead otherwise.
func refusedByPolicy(err error) error {
	switch {
	case err == nil:
		return fmt.Errorf("want it refused by %s, but it succeeded", statusPolicy)
	case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), statusPolicy):
		return fmt.Errorf("want 403 Forbidden by %s, got %w", statusPolicy, err)
	}
	return nil
}

// patchSpeakerStatus merge-patches the status subresource of the SpeakerStatus name, as
// a speaker writes its record.
func patchSpeakerStatus(ctx context.Context, c heraldclient.Interface, name string, status map[string]any) error {
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	_, err = c.HeraldV1alpha1().SpeakerStatuses().Patch(ctx, name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: "herald-speaker"}, "status")
	return err
}
