package speaker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/bgp"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
)

// TestBGPUnnumbered runs the built herald-speaker with a BGPPeer that names
// an interface (spec.interface: unn0) instead of an address. Only node1 has
// the interface, a point-to-point link to an FRR router with "neighbor unn0
// interface" and no addresses but the kernel's IPv6 link-local ones. node1's
// session comes up and FRR routes the Service's IPv4 address via node1's
// IPv6 link-local address (RFC 5549), in BGP and in its kernel; node2, which
// lacks the interface, opens no session and its SpeakerStatus says why.
func TestBGPUnnumbered(t *testing.T) {
	const ifname = "unn0"
	bgp.RequireFRR(t)
	lab := speakerlab.New(t, speakerlab.Options{Nodes: 2, NoSpeakers: true})
	ctx := t.Context()
	node1, node2 := lab.Node("node1"), lab.Node("node2")

	h := lab.Net.AddHost("router")
	r4, r6 := netlab.LANAddrs(netlab.RouterHostNumber)
	h.Attach(lab.ClientLink.Bridge, "eth0", r4, r6)
	lab.Net.Veth(h, ifname, node1.Host, ifname)
	r := netlab.NewRouter(h)
	r.StartBGP(netlab.BGPConfig{ASN: bgp.RouterASN, Neighbors: []netlab.BGPNeighborConfig{{Interface: ifname, ASN: bgp.NodeASN}}})

	hc := lab.Herald.HeraldV1alpha1()
	peer := &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor-unnumbered"}, Spec: v1alpha1.BGPPeerSpec{
		Interface: ifname, PeerASN: bgp.RouterASN, MyASN: bgp.NodeASN,
		HoldTime: &metav1.Duration{Duration: 9 * time.Second}, KeepaliveTime: &metav1.Duration{Duration: 3 * time.Second},
	}}
	if _, err := hc.BGPPeers().Create(ctx, peer, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: speakerlab.RoutedPoolName}, Spec: v1alpha1.IPPoolSpec{Addresses: []string{netlab.RoutedPoolV4.String()}}}
	if _, err := hc.IPPools().Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ad := &v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: speakerlab.RoutedPoolName}, Spec: v1alpha1.BGPAdvertisementSpec{IPPools: []string{speakerlab.RoutedPoolName}}}
	if _, err := hc.BGPAdvertisements().Create(ctx, ad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	addr := speakerlab.RoutedAddr(2)
	prefix := netip.PrefixFrom(addr, 32)
	if err := lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "unnumbered", Addresses: []netip.Addr{addr}}); err != nil {
		t.Fatal(err)
	}
	if err := lab.SetEndpoints(ctx, "unnumbered", v4, speakerlab.EndpointState{Node: "node1"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, n := range lab.Nodes {
		lab.StartSpeaker(n)
	}
	for _, n := range lab.Nodes {
		lab.WaitReady(n)
	}

	var nodeLL netip.Addr
	err := netlab.Poll(ctx, 90*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		all, err := sessions(ctx, lab)
		if err != nil {
			return err
		}
		s1, s2 := all["node1"], all["node2"]
		if len(s1) != 1 || s1[0].State != "Established" || s1[0].PrefixesAdvertised != 1 {
			return fmt.Errorf("node1: sessions %+v, want tor-unnumbered Established with 1 prefix", s1)
		}
		if !strings.HasPrefix(s1[0].PeerAddress, "fe80:") || !strings.HasSuffix(s1[0].PeerAddress, "%"+ifname) {
			return fmt.Errorf("node1: peerAddress %q, want the router's link-local address on %s", s1[0].PeerAddress, ifname)
		}
		if len(s2) != 1 || s2[0].State != "NotConfigured" || !strings.Contains(s2[0].LastError, "this node has no interface unn0 (spec.interface)") {
			return fmt.Errorf("node2: sessions %+v, want tor-unnumbered NotConfigured for want of unn0", s2)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, lab.Logs())
	}
	t.Logf("node1's unnumbered session Established %v after the speakers started", time.Since(start).Round(100*time.Millisecond))

	err = netlab.Poll(ctx, 30*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		out, err := node1.Host.Run(ctx, "ip", "-j", "-6", "addr", "show", "dev", ifname, "scope", "link")
		if err != nil {
			return err
		}
		var links []struct {
			AddrInfo []struct {
				Local string `json:"local"`
			} `json:"addr_info"`
		}
		if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 || len(links[0].AddrInfo) == 0 {
			return fmt.Errorf("node1's link-local address on %s: %v: %s", ifname, err, out)
		}
		if nodeLL, err = netip.ParseAddr(links[0].AddrInfo[0].Local); err != nil {
			return err
		}
		route, ok, err := r.Route(ctx, prefix)
		if err != nil || !ok {
			return fmt.Errorf("router has no route to %s (%v)", prefix, err)
		}
		var hops []netip.Addr
		for _, p := range route.Paths {
			hops = append(hops, p.NextHops...)
		}
		kernel, err := r.KernelNextHops(ctx, prefix)
		if err != nil {
			return err
		}
		if !slices.Equal(kernel, []netip.Addr{nodeLL}) {
			return fmt.Errorf("router's kernel routes %s via %v, want [%v] (BGP paths' global next hops: %v)", prefix, kernel, nodeLL, hops)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, lab.Logs())
	}
	out, _ := r.Run(ctx, "ip", "-4", "route", "show", "exact", prefix.String())
	t.Logf("router's kernel route: %s", strings.TrimSpace(out))
	if n, _ := lab.Metric(ctx, node2, "herald_speaker_bgp_session_up", `peer="tor-unnumbered"`); n != 0 {
		t.Errorf("node2: herald_speaker_bgp_session_up = %v, want 0", n)
	}
}
