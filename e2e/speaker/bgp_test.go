package speaker_test

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/bgp"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
	"github.com/herald-dev/herald/speaker"
)

// bgpLab is a speaker lab with an FRR router on its LAN peering with every
// node, and a routed pool advertised over BGP (speakerlab.StartRouter).
type bgpLab struct {
	*speakerlab.Lab
	Router *netlab.Router
}

func newBGPLab(t *testing.T, password string) *bgpLab {
	t.Helper()
	bgp.RequireFRR(t)
	lab := speakerlab.New(t, speakerlab.Options{})
	r, err := lab.StartRouter(t.Context(), password)
	if err != nil {
		t.Fatal(err)
	}
	return &bgpLab{Lab: lab, Router: r}
}

// setPassword updates the BGPPeer's password Secret.
func setPassword(t *testing.T, lab *speakerlab.Lab, password string) {
	t.Helper()
	if err := lab.SetBGPPassword(t.Context(), password); err != nil {
		t.Fatal(err)
	}
}

// nextHopsAre waits until the router's route to prefix goes through exactly
// the nodes in want (none: no route), as multipath next hops.
func (l *bgpLab) nextHopsAre(t *testing.T, prefix netip.Prefix, timeout time.Duration, want ...string) {
	t.Helper()
	var wantHops []netip.Addr
	for _, name := range want {
		wantHops = append(wantHops, l.Node(name).Addr4)
	}
	slices.SortFunc(wantHops, netip.Addr.Compare)
	var last []netip.Addr
	err := netlab.Poll(t.Context(), timeout, 100*time.Millisecond, func(ctx context.Context) error {
		got, err := l.nextHops(ctx, prefix)
		if err != nil {
			return err
		}
		last = got
		if !slices.Equal(got, wantHops) {
			return fmt.Errorf("%v via %v, want %v", prefix, got, wantHops)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after %v: %v (last %v)\n%s", timeout, err, last, l.Logs())
	}
}

// nextHops returns the router's next hops to prefix, sorted.
func (l *bgpLab) nextHops(ctx context.Context, prefix netip.Prefix) ([]netip.Addr, error) {
	return speakerlab.NextHops(ctx, l.Router, prefix)
}

// sessions returns each node's BGP sessions from its SpeakerStatus.
func sessions(ctx context.Context, lab *speakerlab.Lab) (map[string][]v1alpha1.BGPSessionStatus, error) {
	list, err := lab.Herald.HeraldV1alpha1().SpeakerStatuses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string][]v1alpha1.BGPSessionStatus{}
	for _, s := range list.Items {
		out[s.Name] = s.Status.BGPSessions
	}
	return out, nil
}

// sessionsAre waits until every node's SpeakerStatus shows one session with
// the peer "tor" that check accepts.
func sessionsAre(t *testing.T, lab *speakerlab.Lab, timeout time.Duration, check func(node string, s v1alpha1.BGPSessionStatus) error) {
	t.Helper()
	var last map[string][]v1alpha1.BGPSessionStatus
	err := netlab.Poll(t.Context(), timeout, 200*time.Millisecond, func(ctx context.Context) error {
		all, err := sessions(ctx, lab)
		if err != nil {
			return err
		}
		last = all
		for _, n := range lab.Nodes {
			ss := all[n.Name]
			if len(ss) != 1 || ss[0].Peer != "tor" {
				return fmt.Errorf("%s: sessions %+v, want one with tor", n.Name, ss)
			}
			if err := check(n.Name, ss[0]); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after %v: %v (last %+v)\n%s", timeout, err, last, lab.Logs())
	}
}

func TestBGP(t *testing.T) {
	const password = "lab-secret-1"
	lab := newBGPLab(t, password)
	ctx := t.Context()
	clusterAddr, localAddr := speakerlab.RoutedAddr(2), speakerlab.RoutedAddr(3)
	clusterPrefix, localPrefix := netip.PrefixFrom(clusterAddr, 32), netip.PrefixFrom(localAddr, 32)
	if err := lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "bgp-cluster", Addresses: []netip.Addr{clusterAddr}}); err != nil {
		t.Fatal(err)
	}
	if err := lab.SetEndpoints(ctx, "bgp-cluster", v4, speakerlab.EndpointState{Node: "node1"}); err != nil {
		t.Fatal(err)
	}
	if err := lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "bgp-local", Local: true, Addresses: []netip.Addr{localAddr}}); err != nil {
		t.Fatal(err)
	}
	if err := lab.SetEndpoints(ctx, "bgp-local", v4, speakerlab.EndpointState{Node: "node2"}); err != nil {
		t.Fatal(err)
	}

	t.Run("sessions with the password from a Secret come up", func(t *testing.T) {
		sessionsAre(t, lab.Lab, 60*time.Second, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State != "Established" {
				return fmt.Errorf("state %s (lastError %q), want Established", s.State, s.LastError)
			}
			if s.PeerAddress != lab.Router.Addr4().String() {
				return fmt.Errorf("peerAddress %s", s.PeerAddress)
			}
			return nil
		})
	})
	t.Run("cluster policy: one next hop per node", func(t *testing.T) {
		lab.nextHopsAre(t, clusterPrefix, 20*time.Second, "node1", "node2", "node3")
	})
	t.Run("local policy: only the node with the ready endpoint", func(t *testing.T) {
		lab.nextHopsAre(t, localPrefix, 20*time.Second, "node2")
	})
	t.Run("status shows prefix counts", func(t *testing.T) {
		want := map[string]int32{"node1": 1, "node2": 2, "node3": 1}
		sessionsAre(t, lab.Lab, 10*time.Second, func(node string, s v1alpha1.BGPSessionStatus) error {
			if s.PrefixesAdvertised != want[node] {
				return fmt.Errorf("prefixesAdvertised %d, want %d", s.PrefixesAdvertised, want[node])
			}
			return nil
		})
		for _, n := range lab.Nodes {
			up, err := lab.Metric(ctx, n, "herald_speaker_bgp_session_up", `peer="tor"`)
			if err != nil || up != 1 {
				t.Errorf("%s: herald_speaker_bgp_session_up %v, %v; want 1", n.Name, up, err)
			}
			adv, err := lab.Metric(ctx, n, "herald_speaker_bgp_advertised_prefixes", `peer="tor"`)
			if err != nil || adv != float64(want[n.Name]) {
				t.Errorf("%s: herald_speaker_bgp_advertised_prefixes %v, %v; want %d", n.Name, adv, err, want[n.Name])
			}
		}
	})
	t.Run("local policy: the next hop follows the endpoint", func(t *testing.T) {
		if err := lab.SetEndpoints(ctx, "bgp-local", v4, speakerlab.EndpointState{Node: "node3"}); err != nil {
			t.Fatal(err)
		}
		lab.nextHopsAre(t, localPrefix, 10*time.Second, "node3")
		if err := lab.SetEndpoints(ctx, "bgp-local", v4, speakerlab.EndpointState{Node: "node1"}, speakerlab.EndpointState{Node: "node3"}); err != nil {
			t.Fatal(err)
		}
		lab.nextHopsAre(t, localPrefix, 10*time.Second, "node1", "node3")
		if err := lab.SetEndpoints(ctx, "bgp-local", v4); err != nil {
			t.Fatal(err)
		}
		lab.nextHopsAre(t, localPrefix, 10*time.Second)
		lab.nextHopsAre(t, clusterPrefix, 5*time.Second, "node1", "node2", "node3")
	})
	t.Run("wrong password: sessions down with lastError, layer 2 unaffected, then recovery", func(t *testing.T) {
		l2Addr := lbAddr(v4, 20)
		if err := lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "l2-during-bgp", Addresses: []netip.Addr{l2Addr}}); err != nil {
			t.Fatal(err)
		}
		if err := lab.SetEndpoints(ctx, "l2-during-bgp", v4, speakerlab.EndpointState{Node: "node2"}); err != nil {
			t.Fatal(err)
		}
		setPassword(t, lab.Lab, "not-the-routers")
		sessionsAre(t, lab.Lab, 90*time.Second, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State == "Established" {
				return fmt.Errorf("still Established")
			}
			if !strings.Contains(s.LastError, "password") {
				return fmt.Errorf("lastError %q does not mention the password", s.LastError)
			}
			return nil
		})
		lab.nextHopsAre(t, clusterPrefix, 10*time.Second)
		got, err := lab.Answering(ctx, l2Addr)
		if err != nil || len(got) != 1 {
			t.Errorf("layer-2 address %s answered by %v (%v), want one node", l2Addr, got, err)
		}
		events, err := lab.Kube.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=BGPPeer,involvedObject.name=tor"})
		if err != nil {
			t.Fatal(err)
		}
		failed := 0
		for _, e := range events.Items {
			if e.Reason == speaker.ReasonBGPSessionFailed {
				failed++
			}
		}
		if failed == 0 {
			t.Errorf("no %s event on BGPPeer tor", speaker.ReasonBGPSessionFailed)
		}

		setPassword(t, lab.Lab, password)
		sessionsAre(t, lab.Lab, 60*time.Second, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State != "Established" {
				return fmt.Errorf("state %s, want Established", s.State)
			}
			return nil
		})
		lab.nextHopsAre(t, clusterPrefix, 10*time.Second, "node1", "node2", "node3")
	})
	t.Run("missing Secret: NotConfigured with lastError, then recovery", func(t *testing.T) {
		if err := lab.Kube.CoreV1().Secrets(speakerlab.SecretNamespace).Delete(ctx, speakerlab.PasswordSecret, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		sessionsAre(t, lab.Lab, 30*time.Second, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State != "NotConfigured" || !strings.Contains(s.LastError, speakerlab.PasswordSecret) {
				return fmt.Errorf("state %s, lastError %q; want NotConfigured naming the Secret", s.State, s.LastError)
			}
			return nil
		})
		lab.nextHopsAre(t, clusterPrefix, 10*time.Second)
		setPassword(t, lab.Lab, password)
		sessionsAre(t, lab.Lab, 60*time.Second, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State != "Established" {
				return fmt.Errorf("state %s, want Established", s.State)
			}
			return nil
		})
		lab.nextHopsAre(t, clusterPrefix, 10*time.Second, "node1", "node2", "node3")
	})
	t.Run("sourceAddress: only the node that has it peers, the others say why", func(t *testing.T) {
		node1 := lab.Nodes[0]
		updatePeer(t, lab.Lab, func(s *v1alpha1.BGPPeerSpec) { s.SourceAddress = node1.Addr4.String() })
		sessionsAre(t, lab.Lab, 60*time.Second, func(node string, s v1alpha1.BGPSessionStatus) error {
			if node == node1.Name {
				if s.State != "Established" {
					return fmt.Errorf("state %s (lastError %q), want Established", s.State, s.LastError)
				}
				return nil
			}
			if want := "this node has no address " + node1.Addr4.String(); s.State != "NotConfigured" || !strings.Contains(s.LastError, want) {
				return fmt.Errorf("state %s, lastError %q; want NotConfigured with %q", s.State, s.LastError, want)
			}
			return nil
		})
		lab.nextHopsAre(t, clusterPrefix, 20*time.Second, node1.Name)
		updatePeer(t, lab.Lab, func(s *v1alpha1.BGPPeerSpec) { s.SourceAddress = "" })
		lab.nextHopsAre(t, clusterPrefix, 60*time.Second, "node1", "node2", "node3")
	})
	t.Run("BFD the router does not answer: lastError, BFDNotUp event, metric, no reset", func(t *testing.T) {
		dropped := routerDrops(t, lab)
		updatePeer(t, lab.Lab, func(s *v1alpha1.BGPPeerSpec) { s.BFD = &v1alpha1.BFDSettings{} })
		sessionsAre(t, lab.Lab, 60*time.Second, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State != "Established" || s.BFDState != "Down" || !strings.Contains(s.LastError, "BFD is enabled but still Down") {
				return fmt.Errorf("state %s, BFD %q, lastError %q; want Established, BFD Down and the BFD message", s.State, s.BFDState, s.LastError)
			}
			return nil
		})
		bfdConditionIs(t, lab.Lab, true)
		events, err := lab.Kube.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=BGPPeer,involvedObject.name=tor,reason=" + speaker.ReasonBFDNotUp})
		if err != nil {
			t.Fatal(err)
		}
		if len(events.Items) == 0 {
			t.Errorf("no %s event on BGPPeer tor", speaker.ReasonBFDNotUp)
		}
		for _, n := range lab.Nodes {
			if down, err := lab.Metric(ctx, n, "herald_speaker_bgp_bfd_state", `peer="tor",state="Down"`); err != nil || down != 1 {
				t.Errorf("%s: herald_speaker_bgp_bfd_state{state=Down} %v, %v; want 1", n.Name, down, err)
			}
		}
		// New timers of a BFD session that is not up keep the sessions too.
		updatePeer(t, lab.Lab, func(s *v1alpha1.BGPPeerSpec) {
			s.BFD = &v1alpha1.BFDSettings{Multiplier: ptr.To(int32(4))}
		})
		updatePeer(t, lab.Lab, func(s *v1alpha1.BGPPeerSpec) { s.BFD = nil })
		sessionsAre(t, lab.Lab, 60*time.Second, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State != "Established" || s.BFDState != "" {
				return fmt.Errorf("state %s, BFD %q; want Established without BFD", s.State, s.BFDState)
			}
			return nil
		})
		bfdConditionIs(t, lab.Lab, false)
		// BFD on, new timers and off again, with the router answering no
		// BFD: each node's speaker changed its session in place.
		if after := routerDrops(t, lab); !maps.Equal(after, dropped) {
			t.Errorf("router: connections dropped per node %v before turning BFD on, %v after turning it off; want no reset", dropped, after)
		}
	})
}

// routerDrops returns, per node address, how many times the router's
// session with it went down.
func routerDrops(t *testing.T, lab *bgpLab) map[netip.Addr]int {
	t.Helper()
	ns, err := lab.Router.Neighbors(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.Addr]int{}
	for _, n := range ns {
		out[n.Address] = n.ConnectionsDropped
	}
	return out
}

// updatePeer changes the BGPPeer PeerName's spec.
func updatePeer(t *testing.T, lab *speakerlab.Lab, change func(*v1alpha1.BGPPeerSpec)) {
	t.Helper()
	api := lab.Herald.HeraldV1alpha1().BGPPeers()
	p, err := api.Get(t.Context(), speakerlab.PeerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	change(&p.Spec)
	if _, err := api.Update(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// bfdConditionIs waits until every node's SpeakerStatus has the BFDUp
// condition False with reason BFDNotUp (want) or no such condition.
func bfdConditionIs(t *testing.T, lab *speakerlab.Lab, want bool) {
	t.Helper()
	netlab.Eventually(t, 20*time.Second, func(ctx context.Context) error {
		list, err := lab.Herald.HeraldV1alpha1().SpeakerStatuses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(list.Items) != len(lab.Nodes) {
			return fmt.Errorf("%d SpeakerStatuses, want %d", len(list.Items), len(lab.Nodes))
		}
		for _, st := range list.Items {
			c := meta.FindStatusCondition(st.Status.Conditions, v1alpha1.SpeakerConditionBFDUp)
			if got := c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.SpeakerReasonBFDNotUp; got != want || (!want && c != nil) {
				return fmt.Errorf("%s: BFDUp condition %+v, want BFDNotUp: %v", st.Name, c, want)
			}
		}
		return nil
	})
}
