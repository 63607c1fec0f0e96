package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/controlplane"
)

// nodeNameExtra is the user-information key under which the apiserver puts the node of
// a Pod-bound service-account token.
const nodeNameExtra = "authentication.kubernetes.io/node-name"

// testSpeakerStatusPolicy checks deploy/speaker/status-policy.yaml with real tokens: two
// speakers, each holding a service-account token bound to a Pod on its own node (as the
// kubelet mounts them), write SpeakerStatus records. Each may write its own, and mark the
// other's not ready exactly as a surviving speaker does; every other write of another
// node's record, and every write with a token that names no node, is refused. The admin
// is not bound by the policy.
func testSpeakerStatusPolicy(t *testing.T, cp *controlplane.ControlPlane) {
	ctx := t.Context()
	const nodeA, nodeB = "status-node-a", "status-node-b"
	speakerOn := func(node string) (*rest.Config, versioned.Interface) {
		t.Helper()
		cfg, err := cp.PodBoundServiceAccountConfig(ctx, namespace, speakerAccount, node)
		if err != nil {
			t.Fatal(err)
		}
		return cfg, versioned.NewForConfigOrDie(cfg)
	}
	cfgA, a := speakerOn(nodeA)
	_, b := speakerOn(nodeB)
	admin := versioned.NewForConfigOrDie(cp.Config())

	t.Run("the apiserver puts the Pod's node into the token", func(t *testing.T) {
		review, err := kubernetes.NewForConfigOrDie(cfgA).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u := review.Status.UserInfo
		if want := "system:serviceaccount:" + namespace + ":" + speakerAccount; u.Username != want {
			t.Errorf("token authenticates as %q, want %q", u.Username, want)
		}
		if got := u.Extra[nodeNameExtra]; len(got) != 1 || got[0] != nodeA {
			t.Errorf("extra %s = %q, want [%s]; every extra: %v", nodeNameExtra, got, nodeA, u.Extra)
		}
	})

	ok := func(t *testing.T, what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: want it allowed, got %v", what, err)
		}
	}
	refused := func(t *testing.T, what string, err error) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("%s: want it refused, but it succeeded", what)
		case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "herald-speakerstatus-writers"):
			t.Errorf("%s: want 403 Forbidden by the policy herald-speakerstatus-writers, got %v", what, err)
		}
	}

	t.Run("each speaker creates and writes its own record", func(t *testing.T) {
		ok(t, "speaker A writes "+nodeA, writeRunning(ctx, a, nodeA, true))
		ok(t, "speaker B writes "+nodeB, writeRunning(ctx, b, nodeB, true))
	})
	t.Run("a speaker cannot create another node's record", func(t *testing.T) {
		refused(t, "speaker A creates status-node-c", createRecord(ctx, a, "status-node-c"))
		if _, err := admin.HeraldV1alpha1().SpeakerStatuses().Get(ctx, "status-node-c", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the record exists after all (%v)", err)
		}
	})
	t.Run("a speaker cannot report for another node", func(t *testing.T) {
		before, err := admin.HeraldV1alpha1().SpeakerStatuses().Get(ctx, nodeB, metav1.GetOptions{})
		ok(t, "admin get", err)
		refused(t, "speaker A writes B's record as running, with an announcement", writeRunning(ctx, a, nodeB, false))
		refused(t, "speaker A clears B's record but keeps it ready", patchStatus(ctx, a, nodeB, goneStatus(nodeA, metav1.ConditionTrue, v1alpha1.SpeakerReasonRunning), ""))
		refused(t, "speaker A marks B gone in B's name", patchStatus(ctx, a, nodeB, goneStatus(nodeB, metav1.ConditionFalse, v1alpha1.SpeakerReasonNotAlive), ""))
		withAnnouncement := goneStatus(nodeA, metav1.ConditionFalse, v1alpha1.SpeakerReasonNotAlive)
		withAnnouncement["layer2"] = []v1alpha1.Layer2Announcement{{Address: "203.0.113.40", Service: "shop/web", Interfaces: []string{"eth0"}, Since: metav1.Now()}}
		refused(t, "speaker A marks B gone but leaves an announcement", patchStatus(ctx, a, nodeB, withAnnouncement, ""))
		// RBAC grants no delete; the policy would refuse it too.
		if err := a.HeraldV1alpha1().SpeakerStatuses().Delete(ctx, nodeB, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("speaker A deletes B's record: want 403 Forbidden, got %v", err)
		}
		after, err := admin.HeraldV1alpha1().SpeakerStatuses().Get(ctx, nodeB, metav1.GetOptions{})
		ok(t, "admin get", err)
		if after.ResourceVersion != before.ResourceVersion {
			t.Errorf("B's record changed (resourceVersion %s, then %s): %+v", before.ResourceVersion, after.ResourceVersion, after.Status)
		}
	})
	t.Run("a surviving speaker marks a lost node's record not ready", func(t *testing.T) {
		rec, err := admin.HeraldV1alpha1().SpeakerStatuses().Get(ctx, nodeB, metav1.GetOptions{})
		ok(t, "admin get", err)
		ok(t, "speaker A marks B gone", patchStatus(ctx, a, nodeB, goneStatus(nodeA, metav1.ConditionFalse, v1alpha1.SpeakerReasonNotAlive), rec.ResourceVersion))
		rec, err = admin.HeraldV1alpha1().SpeakerStatuses().Get(ctx, nodeB, metav1.GetOptions{})
		ok(t, "admin get", err)
		if len(rec.Status.Layer2) != 0 || len(rec.Status.Conditions) != 1 || rec.Status.Conditions[0].Reason != v1alpha1.SpeakerReasonNotAlive {
			t.Errorf("B's record after the mark: %+v", rec.Status)
		}
		ok(t, "speaker B rewrites its record", writeRunning(ctx, b, nodeB, true))
	})
	t.Run("a token that names no node writes nothing", func(t *testing.T) {
		cfg, err := cp.ServiceAccountConfig(ctx, namespace, speakerAccount)
		ok(t, "token request", err)
		unbound := versioned.NewForConfigOrDie(cfg)
		refused(t, "an unbound speaker token writes "+nodeA, writeRunning(ctx, unbound, nodeA, false))
		refused(t, "an unbound speaker token creates a record", createRecord(ctx, unbound, "status-node-d"))
	})
	t.Run("the admin is not bound by the policy", func(t *testing.T) {
		ok(t, "admin writes A's record", writeRunning(ctx, admin, nodeA, false))
		ok(t, "admin creates a record", createRecord(ctx, admin, "status-node-admin"))
		ok(t, "admin deletes it", admin.HeraldV1alpha1().SpeakerStatuses().Delete(ctx, "status-node-admin", metav1.DeleteOptions{}))
	})
}

// createRecord creates the SpeakerStatus name, as a speaker does for its node.
func createRecord(ctx context.Context, c versioned.Interface, name string) error {
	_, err := c.HeraldV1alpha1().SpeakerStatuses().Create(ctx, &v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: name}},
		metav1.CreateOptions{FieldManager: "herald-speaker"})
	return err
}

// writeRunning writes node's record as a running speaker that announces one address,
// creating the record first when create is set and it is missing.
func writeRunning(ctx context.Context, c versioned.Interface, node string, create bool) error {
	if create {
		if err := createRecord(ctx, c, node); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return patchStatus(ctx, c, node, map[string]any{
		"conditions": []metav1.Condition{{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.SpeakerReasonRunning,
			Message: "written by the policy test", LastTransitionTime: metav1.Now(),
		}},
		"members":         2,
		"layer2":          []v1alpha1.Layer2Announcement{{Address: "203.0.113.41", Service: "shop/web", Interfaces: []string{"eth0"}, Since: metav1.Now()}},
		"layer2Addresses": 1,
	}, "")
}

// goneStatus is the status a surviving speaker on node by writes into a lost node's
// record (speaker/status.go, markGone), with the given Ready status and reason.
func goneStatus(by string, status metav1.ConditionStatus, reason string) map[string]any {
	return map[string]any{
		"conditions": []metav1.Condition{{
			Type: v1alpha1.ConditionReady, Status: status, Reason: reason,
			Message:            fmt.Sprintf("Speaker %s lost contact with this node's speaker; its announcements were moved to other nodes.", by),
			LastTransitionTime: metav1.Now(),
		}},
		"layer2":      nil,
		"bgpSessions": nil,
		"members":     nil,
	}
}

// patchStatus merge-patches name's status subresource, as the speaker writes, with a
// resourceVersion precondition when rv is set.
func patchStatus(ctx context.Context, c versioned.Interface, name string, status map[string]any, rv string) error {
	body := map[string]any{"status": status}
	if rv != "" {
		body["metadata"] = map[string]any{"resourceVersion": rv}
	}
	patch, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = c.HeraldV1alpha1().SpeakerStatuses().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "herald-speaker"}, "status")
	return err
}
