package controller

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
)

// TestPools covers IPPool status (exact counts, conditions), the deletion
// finalizer, edits that leave addresses outside a pool, and the status of
// the other Herald resources.
func TestPools(t *testing.T) {
	e := newEnv(t)
	const ns = "pools"
	e.namespace(t, ns, nil)
	e.createPool(t, "counted", []string{"198.51.100.0/28", "2001:db8:30::/64"}, func(p *v1alpha1.IPPool) { p.Spec.AvoidBuggyIPs = true })
	e.startController(t, nil)

	t.Run("exact counts and Ready", func(t *testing.T) {
		e.createService(t, ns, "v4")
		e.createService(t, ns, "dual", dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol))
		e.waitAnyIngress(t, ns, "v4", 1)
		e.waitAnyIngress(t, ns, "dual", 2)
		e.waitPoolCondition(t, "counted", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonValid)
		want := v1alpha1.IPPoolStatus{
			// 16 IPv4 addresses less .0 (avoidBuggyIPs); 2^64 IPv6 addresses.
			IPv4: &v1alpha1.AddressCounts{Total: "15", Used: "2", Free: "13"},
			IPv6: &v1alpha1.AddressCounts{Total: "18446744073709551616", Used: "1", Free: "18446744073709551615"},
		}
		eventually(t, "pool counts", func() (bool, string) {
			p := e.getPool(t, "counted")
			ok := *p.Status.IPv4 == *want.IPv4 && p.Status.IPv6 != nil && *p.Status.IPv6 == *want.IPv6 && p.Status.ObservedGeneration == p.Generation
			return ok, describeCounts(p)
		})
		// The ingress skipped the avoided .0.
		if got := ingressIPs(e.getService(t, ns, "v4")); got[0] == "198.51.100.0" {
			t.Errorf("avoidBuggyIPs pool handed out %s", got[0])
		}
		if p := e.getPool(t, "counted"); !slices.Contains(p.Finalizers, controller.PoolFinalizer) {
			t.Errorf("pool has no finalizer %s: %v", controller.PoolFinalizer, p.Finalizers)
		}
	})

	t.Run("overlapping pools", func(t *testing.T) {
		e.createPool(t, "overlap", []string{"198.51.100.8/29", "198.51.100.64/30"})
		c := e.waitPoolCondition(t, "overlap", v1alpha1.ConditionOverlapping, metav1.ConditionTrue, v1alpha1.ReasonOverlapsOtherPool)
		if msg := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionOverlapping).Message; !strings.Contains(msg, `"counted"`) {
			t.Errorf("overlap message %q does not name the other pool", msg)
		}
		e.waitPoolCondition(t, "counted", v1alpha1.ConditionOverlapping, metav1.ConditionTrue, v1alpha1.ReasonOverlapsOtherPool)
		// The newer pool keeps only what the older does not have.
		eventually(t, "overlap counts", func() (bool, string) {
			p := e.getPool(t, "overlap")
			return p.Status.IPv4 != nil && p.Status.IPv4.Total == "4", describeCounts(p)
		})
		e.deletePool(t, "overlap")
		e.waitPoolGone(t, "overlap")
		e.waitPoolCondition(t, "counted", v1alpha1.ConditionOverlapping, metav1.ConditionFalse, v1alpha1.ReasonNoOverlap)
	})

	t.Run("an edit never moves an address in use", func(t *testing.T) {
		e.createPool(t, "edited", []string{"203.0.113.16/30"}, noAutoAssign)
		e.createService(t, ns, "in-edited", annotate("herald.dev/pool", "edited"), withLBIP("203.0.113.18"))
		e.waitIngress(t, ns, "in-edited", "203.0.113.18")
		e.updatePool(t, "edited", func(p *v1alpha1.IPPool) { p.Spec.Addresses = []string{"203.0.113.16/31"} })
		p := e.waitPoolCondition(t, "edited", v1alpha1.ConditionAddressesOutsidePool, metav1.ConditionTrue, v1alpha1.ReasonAddressesInUse)
		msg := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionAddressesOutsidePool).Message
		if !strings.Contains(msg, "203.0.113.18") || !strings.Contains(msg, ns+"/in-edited") {
			t.Errorf("AddressesOutsidePool message %q does not name the address and Service", msg)
		}
		// The Service keeps its address, and its condition still says so.
		e.waitCondition(t, ns, "in-edited", config.ConditionAddressAllocated, metav1.ConditionTrue, controller.ReasonAllocated)
		if got := ingressIPs(e.getService(t, ns, "in-edited")); !slices.Equal(got, []string{"203.0.113.18"}) {
			t.Errorf("ingress after the edit %v, want 203.0.113.18", got)
		}
		// The address is not handed out again while held.
		e.updatePool(t, "edited", func(p *v1alpha1.IPPool) { p.Spec.Addresses = []string{"203.0.113.16/30"} })
		e.waitPoolCondition(t, "edited", v1alpha1.ConditionAddressesOutsidePool, metav1.ConditionFalse, controller.ReasonAllAddressesInPool)
		e.createService(t, ns, "wants-18", withLBIP("203.0.113.18"), annotate("herald.dev/pool", "edited"))
		e.waitCondition(t, ns, "wants-18", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonAddressInUse)
	})

	t.Run("deletion waits for the last address", func(t *testing.T) {
		e.createPool(t, "doomed", []string{"203.0.113.32/30"}, noAutoAssign)
		e.createService(t, ns, "holder", annotate("herald.dev/pool", "doomed"))
		e.waitIngress(t, ns, "holder", "203.0.113.32")
		e.createService(t, ns, "holder-2", annotate("herald.dev/pool", "doomed"))
		e.waitIngress(t, ns, "holder-2", "203.0.113.33")
		e.deletePool(t, "doomed")
		p := e.waitPoolCondition(t, "doomed", v1alpha1.ConditionDeletionBlocked, metav1.ConditionTrue, v1alpha1.ReasonAddressesInUse)
		msg := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionDeletionBlocked).Message
		if !strings.Contains(msg, ns+"/holder") || !strings.Contains(msg, "2 allocations") {
			t.Errorf("DeletionBlocked message %q does not name the holders", msg)
		}
		// A deleted pool allocates nothing new.
		e.createService(t, ns, "late", annotate("herald.dev/pool", "doomed"))
		e.waitCondition(t, ns, "late", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonPoolNotAllowed)
		// Its Services keep their addresses until they let go.
		e.deleteService(t, ns, "holder")
		e.waitPoolCondition(t, "doomed", v1alpha1.ConditionDeletionBlocked, metav1.ConditionTrue, v1alpha1.ReasonAddressesInUse)
		if got := ingressIPs(e.getService(t, ns, "holder-2")); !slices.Equal(got, []string{"203.0.113.33"}) {
			t.Errorf("holder-2 ingress %v while its pool is being deleted", got)
		}
		e.updateService(t, ns, "holder-2", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.AllocateLoadBalancerNodePorts = nil
		})
		e.waitPoolGone(t, "doomed")
	})

	t.Run("an unused pool is deleted at once", func(t *testing.T) {
		e.createPool(t, "unused", []string{"203.0.113.40/30"})
		eventually(t, "finalizer added", func() (bool, string) {
			p := e.getPool(t, "unused")
			return slices.Contains(p.Finalizers, controller.PoolFinalizer), strings.Join(p.Finalizers, ",")
		})
		e.deletePool(t, "unused")
		e.waitPoolGone(t, "unused")
	})

	t.Run("status of the other resources", func(t *testing.T) {
		ctx := context.Background()
		v1 := e.herald.HeraldV1alpha1()
		if _, err := v1.L2Advertisements().Create(ctx, &v1alpha1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2-missing"},
			Spec: v1alpha1.L2AdvertisementSpec{IPPools: []string{"no-such-pool"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := v1.L2Advertisements().Create(ctx, &v1alpha1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2-good"},
			Spec: v1alpha1.L2AdvertisementSpec{IPPools: []string{"counted"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := v1.BGPPeers().Create(ctx, &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "peer"},
			Spec: v1alpha1.BGPPeerSpec{PeerAddress: "198.51.100.254", PeerASN: 64500, MyASN: 64501,
				PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: "bgp-password", Key: "password"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := v1.BGPAdvertisements().Create(ctx, &v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "ad"},
			Spec: v1alpha1.BGPAdvertisementSpec{IPPools: []string{"counted"}, Peers: []string{"no-such-peer"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitReady := func(get func() ([]metav1.Condition, int64, int64, error), status metav1.ConditionStatus, reason string) {
			t.Helper()
			eventually(t, "Ready="+string(status)+"/"+reason, func() (bool, string) {
				conds, observed, gen, err := get()
				if err != nil {
					return false, err.Error()
				}
				c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
				if c == nil {
					return false, "no Ready condition"
				}
				return c.Status == status && c.Reason == reason && observed == gen, c.Reason + ": " + c.Message
			})
		}
		l2 := func(name string) func() ([]metav1.Condition, int64, int64, error) {
			return func() ([]metav1.Condition, int64, int64, error) {
				o, err := v1.L2Advertisements().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return nil, 0, 0, err
				}
				return o.Status.Conditions, o.Status.ObservedGeneration, o.Generation, nil
			}
		}
		peer := func() ([]metav1.Condition, int64, int64, error) {
			o, err := v1.BGPPeers().Get(ctx, "peer", metav1.GetOptions{})
			if err != nil {
				return nil, 0, 0, err
			}
			return o.Status.Conditions, o.Status.ObservedGeneration, o.Generation, nil
		}
		ad := func() ([]metav1.Condition, int64, int64, error) {
			o, err := v1.BGPAdvertisements().Get(ctx, "ad", metav1.GetOptions{})
			if err != nil {
				return nil, 0, 0, err
			}
			return o.Status.Conditions, o.Status.ObservedGeneration, o.Generation, nil
		}
		waitReady(l2("l2-missing"), metav1.ConditionFalse, v1alpha1.ReasonPoolNotFound)
		waitReady(l2("l2-good"), metav1.ConditionTrue, v1alpha1.ReasonValid)
		waitReady(peer, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
		waitReady(ad, metav1.ConditionFalse, v1alpha1.ReasonPeerNotFound)
		// Fixing what they refer to fixes them.
		if _, err := e.kube.CoreV1().Secrets("herald-system").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bgp-password"},
			Data: map[string][]byte{"password": []byte("s3cret")}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitReady(peer, metav1.ConditionTrue, v1alpha1.ReasonValid)
		e.createPool(t, "no-such-pool", []string{"203.0.113.48/30"})
		waitReady(l2("l2-missing"), metav1.ConditionTrue, v1alpha1.ReasonValid)

		// A node whose BFD with the peer does not come up (its SpeakerStatus
		// says so, as its speaker writes it) gives the BGPPeer BFDUp=False
		// naming the node; BFD coming up removes the condition.
		sps := v1.SpeakerStatuses()
		if _, err := sps.Create(ctx, &v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		setRecord := func(bfdState string) {
			t.Helper()
			st, err := sps.Get(ctx, "node-a", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			st.Status = v1alpha1.SpeakerStatusStatus{
				Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.SpeakerReasonRunning,
					LastTransitionTime: metav1.Now()}},
				BGPSessions: []v1alpha1.BGPSessionStatus{{Peer: "peer", PeerAddress: "198.51.100.254", State: "Established", BFDState: bfdState}},
			}
			if bfdState != "Up" {
				st.Status.Conditions = append(st.Status.Conditions, metav1.Condition{Type: v1alpha1.SpeakerConditionBFDUp,
					Status: metav1.ConditionFalse, Reason: v1alpha1.SpeakerReasonBFDNotUp, LastTransitionTime: metav1.Now()})
			}
			if _, err := sps.UpdateStatus(ctx, st, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		peerBFD := func(want bool) {
			t.Helper()
			eventually(t, "BGPPeer BFDUp", func() (bool, string) {
				conds, _, _, err := peer()
				if err != nil {
					return false, err.Error()
				}
				c := meta.FindStatusCondition(conds, controller.ConditionBFDUp)
				if !want {
					return c == nil, describeConditions(conds)
				}
				return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.SpeakerReasonBFDNotUp &&
					strings.Contains(c.Message, "node-a"), describeConditions(conds)
			})
		}
		setRecord("Down")
		peerBFD(true)
		waitReady(peer, metav1.ConditionTrue, v1alpha1.ReasonValid) // BFD is not the configuration's fault
		setRecord("Up")
		peerBFD(false)
	})
}

func describeCounts(p *v1alpha1.IPPool) string {
	var b strings.Builder
	if c := p.Status.IPv4; c != nil {
		b.WriteString("ipv4 " + c.Total + "/" + c.Used + "/" + c.Free + " ")
	}
	if c := p.Status.IPv6; c != nil {
		b.WriteString("ipv6 " + c.Total + "/" + c.Used + "/" + c.Free + " ")
	}
	b.WriteString(describeConditions(p.Status.Conditions))
	return b.String()
}

func (e *env) deletePool(t *testing.T, name string) {
	t.Helper()
	if err := e.herald.HeraldV1alpha1().IPPools().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete ippool %s: %v", name, err)
	}
}

func (e *env) waitPoolGone(t *testing.T, name string) {
	t.Helper()
	eventually(t, "ippool "+name+" gone", func() (bool, string) {
		p, err := e.herald.HeraldV1alpha1().IPPools().Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, "finalizers " + strings.Join(p.Finalizers, ",") + " " + describeConditions(p.Status.Conditions)
	})
}
