package controller

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
)

const memberlistSecret = "herald-memberlist"

// TestMemberlistSecret runs the controller as its own user under the
// deployment's RBAC (deploy/controller/rbac.yaml), with the apiserver's
// audit log recording every write: the leader creates the speakers'
// memberlist Secret when it is missing, makes a new one when it is deleted
// before any speaker reported a key, reports instead of replacing it (an
// Event and a metric) when one has, unless told to recreate it, never
// writes to one that exists, and leaves it alone with no name set.
func TestMemberlistSecret(t *testing.T) {
	opts, auditLog := auditOptions(t)
	e := newEnvWith(t, opts)
	const user = "alice"
	e.grantControllerRBAC(t, user)
	userCfg, err := e.cp.UserConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	secrets := e.kube.CoreV1().Secrets("herald-system")
	registry := prometheus.NewRegistry()
	start := func(t *testing.T, name string, edits ...func(*controller.Config)) *running {
		registry = prometheus.NewRegistry()
		return e.startController(t, func(c *controller.Config) {
			c.RESTConfig = userCfg
			c.MemberlistSecretName = name
			c.Registerer = registry
			for _, edit := range edits {
				edit(c)
			}
		})
	}
	// secretWrites lists the controller's writes to Secrets so far.
	secretWrites := func(t *testing.T) []auditWrite {
		var out []auditWrite
		for _, w := range auditWrites(t, auditLog) {
			if w.User == user && w.Resource == "secrets" {
				out = append(out, w)
			}
		}
		return out
	}
	// drained waits until the controller's object queue has passed the
	// memberlist entry, queued when it began to lead: one worker takes the
	// entries in order, so once a pool created after the start carries the
	// finalizer, the memberlist entry before it was handled.
	pools := 0
	drained := func(t *testing.T) {
		pools++
		name := fmt.Sprintf("marker-%d", pools)
		e.createPool(t, name, []string{fmt.Sprintf("203.0.113.%d/32", 100+pools)})
		eventually(t, "pool "+name+" has the finalizer", func() (bool, string) {
			p := e.getPool(t, name)
			return slices.Contains(p.Finalizers, controller.PoolFinalizer), fmt.Sprint(p.Finalizers)
		})
	}
	waitKey := func(t *testing.T, notUID string) *corev1.Secret {
		var sec *corev1.Secret
		eventually(t, "memberlist secret exists", func() (bool, string) {
			s, err := secrets.Get(context.Background(), memberlistSecret, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			sec = s
			return string(s.UID) != notUID, "uid " + string(s.UID)
		})
		return sec
	}
	checkKey := func(t *testing.T, sec *corev1.Secret) {
		t.Helper()
		if len(sec.Data) != 1 {
			t.Errorf("secret data has keys %v, want only %q", keys(sec.Data), controller.MemberlistSecretKey)
		}
		raw, err := base64.StdEncoding.DecodeString(string(sec.Data[controller.MemberlistSecretKey]))
		if err != nil || len(raw) != controller.MemberlistKeyBytes {
			t.Errorf("key %q is not the base64 of %d bytes (%d bytes, %v)", sec.Data[controller.MemberlistSecretKey], controller.MemberlistKeyBytes, len(raw), err)
		}
	}

	var first *corev1.Secret
	t.Run("created when missing", func(t *testing.T) {
		r := start(t, memberlistSecret)
		defer r.stop(t)
		first = waitKey(t, "")
		checkKey(t, first)
		if first.Labels["app.kubernetes.io/managed-by"] != controller.FieldManager {
			t.Errorf("labels %v do not say the controller made it", first.Labels)
		}
		if w := secretWrites(t); len(w) != 1 || w[0].Verb != "create" || w[0].Code != 201 {
			t.Errorf("the controller's writes to Secrets: %v, want one create (201)", w)
		}
	})
	if first == nil {
		t.FailNow()
	}

	t.Run("made again, with a new key, when deleted before any speaker reported a key", func(t *testing.T) {
		r := start(t, memberlistSecret)
		defer r.stop(t)
		if err := secrets.Delete(t.Context(), memberlistSecret, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		again := waitKey(t, string(first.UID))
		checkKey(t, again)
		if bytes.Equal(again.Data[controller.MemberlistSecretKey], first.Data[controller.MemberlistSecretKey]) {
			t.Error("the new Secret has the old key")
		}
	})

	// A speaker reports its keyring in its SpeakerStatus; the record stays
	// after the speaker stopped.
	spst := e.herald.HeraldV1alpha1().SpeakerStatuses()
	t.Run("deleted while speakers use keys: reported, not made again", func(t *testing.T) {
		rec, err := spst.Create(t.Context(), &v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rec.Status.GossipKeys = &v1alpha1.GossipKeyStatus{Primary: "3ba3f5f4", Installed: []string{"3ba3f5f4"}}
		if _, err := spst.UpdateStatus(t.Context(), rec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		r := start(t, memberlistSecret)
		defer r.stop(t)
		before := len(secretWrites(t))
		if err := secrets.Delete(t.Context(), memberlistSecret, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a Warning Event on the missing Secret", func() (bool, string) {
			evs, err := e.kube.CoreV1().Events("herald-system").List(t.Context(), metav1.ListOptions{
				FieldSelector: "involvedObject.name=" + memberlistSecret + ",reason=" + controller.ReasonMemberlistSecretMissing})
			if err != nil {
				return false, err.Error()
			}
			for _, ev := range evs.Items {
				if ev.Type == corev1.EventTypeWarning && ev.InvolvedObject.Kind == "Secret" {
					t.Logf("event: %s", ev.Message)
					return true, ""
				}
			}
			return false, fmt.Sprint(len(evs.Items), " events")
		})
		if got := gauge(t, registry, "herald_controller_memberlist_secret_missing"); got != 1 {
			t.Errorf("herald_controller_memberlist_secret_missing = %v, want 1", got)
		}
		drained(t)
		if _, err := secrets.Get(t.Context(), memberlistSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("get the Secret: %v, want not found", err)
		}
		if w := secretWrites(t); len(w) != before {
			t.Errorf("the controller wrote to Secrets: %v", w[before:])
		}
		// The user puts the Secret back: the metric clears.
		if _, err := secrets.Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: memberlistSecret},
			Data: map[string][]byte{"key": first.Data[controller.MemberlistSecretKey]}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the metric clears", func() (bool, string) {
			got := gauge(t, registry, "herald_controller_memberlist_secret_missing")
			return got == 0, fmt.Sprint(got)
		})
	})

	t.Run("deleted while speakers use keys, with --memberlist-secret-recreate: made again", func(t *testing.T) {
		r := start(t, memberlistSecret, func(c *controller.Config) { c.MemberlistSecretRecreate = true })
		defer r.stop(t)
		old, err := secrets.Get(t.Context(), memberlistSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := secrets.Delete(t.Context(), memberlistSecret, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		checkKey(t, waitKey(t, string(old.UID)))
	})
	if err := spst.Delete(t.Context(), "node1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("an existing Secret is never written", func(t *testing.T) {
		if err := secrets.Delete(t.Context(), memberlistSecret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		own, err := secrets.Create(t.Context(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: memberlistSecret},
			Data:       map[string][]byte{"key": []byte("the user's own key, 32 bytes!!!!")},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before := len(secretWrites(t))
		r := start(t, memberlistSecret)
		drained(t)
		r.stop(t)
		now, err := secrets.Get(t.Context(), memberlistSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if now.ResourceVersion != own.ResourceVersion || !bytes.Equal(now.Data["key"], own.Data["key"]) {
			t.Errorf("the user's Secret changed: resourceVersion %s -> %s, data %q", own.ResourceVersion, now.ResourceVersion, now.Data)
		}
		if w := secretWrites(t); len(w) != before {
			t.Errorf("the controller wrote to Secrets: %v", w[before:])
		}
	})

	t.Run("no Secret without a name", func(t *testing.T) {
		if err := secrets.Delete(t.Context(), memberlistSecret, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		before := len(secretWrites(t))
		r := start(t, "")
		drained(t)
		r.stop(t)
		if _, err := secrets.Get(t.Context(), memberlistSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("get the Secret: %v, want not found", err)
		}
		if w := secretWrites(t); len(w) != before {
			t.Errorf("the controller wrote to Secrets: %v", w[before:])
		}
	})
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// gauge reads the unlabelled gauge name from reg, -1 when absent.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
