package reconcile

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/herald-dev/herald/config"
	heraldfake "github.com/herald-dev/herald/config/generated/clientset/versioned/fake"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
)

// TestClaimEventsMarkHolders drives the speaker's informers with fake
// clientsets: a claim's creation, its holders' change and its deletion
// each mark dirty exactly the Services it listed before and after, and the
// next gatherServices reads the new claim.
func TestClaimEventsMarkHolders(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr := netip.MustParseAddr("198.51.100.140")
	web := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "u-web"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: addr.String()}}}},
	}
	api := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api", UID: "u-api"}}
	kube := kubefake.NewClientset(web.DeepCopy(), api.DeepCopy())
	herald := heraldfake.NewSimpleClientset()
	var logs bytes.Buffer
	s := newFakeLoop(t, "n1", kube, herald, slog.New(slog.NewTextHandler(&logs, nil)))
	if got := s.gatherServices(time.Now()); len(got) != 0 {
		t.Fatalf("before any claim, summaries %+v, want none", got)
	}

	// waitDirty waits until the dirty set holds want (and only want); it
	// leaves it for the next gatherServices.
	waitDirty := func(step string, want ...decide.ServiceKey) {
		t.Helper()
		var keys []string
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			dirty, all := s.changes.sums.Pending()
			keys = keys[:0]
			for _, k := range dirty {
				keys = append(keys, k.String())
			}
			if all {
				t.Fatalf("%s: every summary marked for a rebuild, want only %v", step, want)
			}
			if len(keys) >= len(want) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		slices.Sort(keys)
		var wantKeys []string
		for _, k := range want {
			wantKeys = append(wantKeys, k.String())
		}
		slices.Sort(wantKeys)
		if diff := cmp.Diff(wantKeys, keys); diff != "" {
			t.Fatalf("%s: dirty Services (-want +got):\n%s", step, diff)
		}
	}
	claims := herald.HeraldV1alpha1().AddressClaims()

	created, err := claims.Create(ctx, claimFor(addr, "lan", holder(web, v1alpha1.HolderLoadBalancer)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitDirty("claim created", decide.ServiceKey{Namespace: "shop", Name: "web"})
	if got := s.gatherServices(time.Now()); len(got) != 1 || !slices.Equal(got[0].Addresses, []config.ClaimedAddress{{Addr: addr, Pool: "lan"}}) {
		t.Fatalf("after the claim, summaries %+v, want shop/web with %s in lan", got, addr)
	}

	// The address moves to api: web loses it, api gains it.
	moved := created.DeepCopy()
	moved.Spec.Holders = []v1alpha1.AddressHolder{holder(api, v1alpha1.HolderLoadBalancer)}
	if _, err := claims.Update(ctx, moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDirty("holder replaced", decide.ServiceKey{Namespace: "shop", Name: "web"}, decide.ServiceKey{Namespace: "shop", Name: "api"})
	if got := s.gatherServices(time.Now()); len(got) != 0 {
		t.Fatalf("once the claim lists api only, summaries %+v, want none (web no longer holds it, api does not ask for it)", got)
	}

	if err := claims.Delete(ctx, moved.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDirty("claim deleted", decide.ServiceKey{Namespace: "shop", Name: "api"})
	s.gatherServices(time.Now())

	// An invalid claim is logged once and counted, and its holders marked.
	bad := claimFor(addr, "lan", holder(web, v1alpha1.HolderLoadBalancer))
	bad.Spec.Address = "198.51.100.141"
	if _, err := claims.Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDirty("invalid claim created", decide.ServiceKey{Namespace: "shop", Name: "web"})
	if got := s.gatherServices(time.Now()); len(got) != 0 {
		t.Fatalf("with an invalid claim, summaries %+v, want none", got)
	}
	if n := s.changes.badClaims.Count(); n != 1 {
		t.Errorf("invalid claims counted: %d, want 1", n)
	}
	if n := strings.Count(logs.String(), "ignoring an invalid AddressClaim"); n != 1 {
		t.Errorf("invalid claim logged %d times, want once:\n%s", n, logs.String())
	}
	if err := claims.Delete(ctx, bad.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDirty("invalid claim deleted", decide.ServiceKey{Namespace: "shop", Name: "web"})
	if n := s.changes.badClaims.Count(); n != 0 {
		t.Errorf("invalid claims counted after its deletion: %d, want 0", n)
	}
}
