package suite

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
	e2ebgp "github.com/herald-dev/herald/e2e/bgp"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

func init() { register(20, "BGP", testBGP) }

// The BGP group's set-up. The router (FRR) is AS 64512. The nodes peer with its
// IPv4 address as AS 64513 (eBGP, BFD 300 ms x 3, hold time 90 s so that only BFD
// can explain a quick failover) and with its IPv6 address as AS 64512 (iBGP:
// LOCAL_PREF only reaches iBGP peers). Both sessions use the password from one
// Secret. Each family has its own pool, advertised to its own session.
const (
	bgpRouterASN = 64512
	bgpNodeASN   = 64513
	bgpPassword  = "suite-bgp-pw-1"
	bgpSecret    = "suite-bgp-password"
	bgpPeerV4    = "suite-v4"
	bgpPeerV6    = "suite-v6"
	bgpPoolV4    = "suite-bgp-v4"
	bgpPoolV6    = "suite-bgp-v6"
	bgpNamespace = "default"
)

var bgpPeers = []string{bgpPeerV4, bgpPeerV6}

// bgpObjects are the Herald objects of the group, applied at its start.
func bgpObjects(password string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: %[1]s, namespace: %[2]s}
stringData: {password: %[3]s}
---
apiVersion: herald.dev/v1alpha1
kind: BGPPeer
metadata: {name: %[4]s}
spec:
  peerAddress: "%[6]s"
  peerASN: %[8]d
  myASN: %[9]d
  passwordSecretRef: {name: %[1]s}
  bfd: {minRx: 300ms, minTx: 300ms, multiplier: 3}
---
apiVersion: herald.dev/v1alpha1
kind: BGPPeer
metadata: {name: %[5]s}
spec:
  peerAddress: "%[7]s"
  peerASN: %[8]d
  myASN: %[8]d
  holdTime: 9s
  keepaliveTime: 3s
  passwordSecretRef: {name: %[1]s}
`, bgpSecret, productlab.Namespace, password, bgpPeerV4, bgpPeerV6,
		routerAddr(true), routerAddr(false), bgpRouterASN, bgpNodeASN) + `
---
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: suite-bgp-v4}
spec:
  addresses: ["203.0.113.128/26"]
  autoAssign: false
---
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: suite-bgp-v6}
spec:
  addresses: ["2001:db8:200::/120"]
  autoAssign: false
` + bgpAdvertisements("", "")
}

// bgpAdvertisements renders the two BGPAdvertisements; v4Extra and v6Extra are
// extra spec lines (communities, localPref) for each.
func bgpAdvertisements(v4Extra, v6Extra string) string {
	return fmt.Sprintf(`
---
apiVersion: herald.dev/v1alpha1
kind: BGPAdvertisement
metadata: {name: %s}
spec:
  ipPools: [%s]
  peers: [%s]
%s
---
apiVersion: herald.dev/v1alpha1
kind: BGPAdvertisement
metadata: {name: %s}
spec:
  ipPools: [%s]
  peers: [%s]
%s
`, bgpPoolV4, bgpPoolV4, bgpPeerV4, v4Extra, bgpPoolV6, bgpPoolV6, bgpPeerV6, v6Extra)
}

// routerAddr returns the lab router's LAN address of one family.
func routerAddr(v4 bool) netip.Addr {
	a4, a6 := netlab.LANAddrs(netlab.RouterHostNumber)
	if v4 {
		return a4.Addr()
	}
	return a6.Addr()
}

// bgpService renders a LoadBalancer Service in the group's pool of its family.
func bgpService(name string, v6, local bool) string {
	pool, family, policy := bgpPoolV4, "IPv4", "Cluster"
	if v6 {
		pool, family = bgpPoolV6, "IPv6"
	}
	if local {
		policy = "Local"
	}
	return fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: %s
  annotations: {herald.dev/pool: %s}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  externalTrafficPolicy: %s
  ipFamilyPolicy: SingleStack
  ipFamilies: [%s]
  selector: {app: %s}
  ports: [{name: http, port: 80, targetPort: %d}]
`, name, bgpNamespace, pool, policy, family, name, productlab.WebPort)
}

// routerConfig is FRR's side of the group's peering: each node as a passive
// neighbour (the speakers dial; they listen on no port) on both families, with
// the password, BFD on the IPv4 sessions as static bfdd sessions, and zebra
// installing the learned routes so that the router forwards to the next hops.
func routerConfig(l *productlab.Lab) netlab.BGPConfig {
	var ns []netlab.BGPNeighborConfig
	for _, n := range l.Cluster.Nodes {
		ns = append(ns,
			netlab.BGPNeighborConfig{Address: n.Addr4(), ASN: bgpNodeASN, Password: bgpPassword, Passive: true,
				BFD: true, BFDMinRx: 300 * time.Millisecond, BFDMinTx: 300 * time.Millisecond, BFDMultiplier: 3},
			netlab.BGPNeighborConfig{Address: n.Addr6(), ASN: bgpRouterASN, Password: bgpPassword, Passive: true,
				HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second})
	}
	return netlab.BGPConfig{ASN: bgpRouterASN, Neighbors: ns, InstallRoutes: true}
}

// testBGP runs the BGP scenarios. Subtest names hold no comma: productlab's Apply
// writes its manifest under t.TempDir(), named after the test, and kubectl -f
// splits paths at commas.
func testBGP(t *testing.T, l *productlab.Lab) {
	r := l.Cluster.Router
	r.StartBGP(routerConfig(l))
	// Hash on ports too, so that the router spreads the client's connections over
	// its ECMP next hops (the default hashes on addresses only: one node per client).
	r.Sysctl("net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1")
	t.Cleanup(func() {
		if out, err := l.Kubectl("delete", "--ignore-not-found", "--wait=false", "-n", bgpNamespace,
			"service/bgp-cluster", "service/bgp-local", "service/bgp-v6"); err != nil {
			t.Errorf("clean up: %v\n%s", err, out)
		}
		if out, err := l.Kubectl("delete", "--ignore-not-found", "--wait=false",
			"bgpadvertisement/"+bgpPoolV4, "bgpadvertisement/"+bgpPoolV6,
			"bgppeer/"+bgpPeerV4, "bgppeer/"+bgpPeerV6, "ippool/"+bgpPoolV4, "ippool/"+bgpPoolV6); err != nil {
			t.Errorf("clean up: %v\n%s", err, out)
		}
		if out, err := l.Kubectl("delete", "--ignore-not-found", "-n", productlab.Namespace, "secret/"+bgpSecret); err != nil {
			t.Errorf("clean up: %v\n%s", err, out)
		}
		// The speakers close their BGP servers once no BGPPeer selects them.
		err := netlab.Poll(context.Background(), 60*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
			all, err := l.BGPSessions(ctx)
			if err != nil {
				return err
			}
			for node, ss := range all {
				if len(ss) > 0 {
					return fmt.Errorf("SpeakerStatus %s still lists BGP sessions %+v", node, ss)
				}
			}
			return nil
		})
		if err != nil {
			t.Errorf("clean up: %v", err)
		}
		r.StopBGP()
		if out, err := r.Run(context.Background(), "sysctl", "-q", "-w",
			"net.ipv4.fib_multipath_hash_policy=0", "net.ipv6.fib_multipath_hash_policy=0"); err != nil {
			t.Errorf("clean up: %v\n%s", err, out)
		}
	})
	l.Apply(bgpObjects(bgpPassword))
	web := l.WebPods()
	nodes := l.Cluster.Nodes
	node1, node2, node3 := nodes[0], nodes[1], nodes[2]
	// The Services every scenario may use: bgp-cluster (IPv4) and bgp-v6 (IPv6),
	// Cluster policy, served by the web pods on node1 and node2; bgp-local (IPv4,
	// Local policy) gets its pods in its scenario.
	l.Apply(bgpService("bgp-cluster", false, false) + "---\n" + bgpService("bgp-v6", true, false) + "---\n" + bgpService("bgp-local", false, true))
	clusterAddr := l.WaitAddresses(bgpNamespace, "bgp-cluster", 1, 30*time.Second)[0]
	v6Addr := l.WaitAddresses(bgpNamespace, "bgp-v6", 1, 30*time.Second)[0]
	localAddr := l.WaitAddresses(bgpNamespace, "bgp-local", 1, 30*time.Second)[0]
	for _, c := range []struct {
		addr netip.Addr
		pool string
	}{{clusterAddr, "203.0.113.128/26"}, {v6Addr, "2001:db8:200::/120"}, {localAddr, "203.0.113.128/26"}} {
		if !netip.MustParsePrefix(c.pool).Contains(c.addr) {
			t.Fatalf("a Service got %v, outside its pool %s", c.addr, c.pool)
		}
	}
	l.Backend(bgpNamespace, "bgp-cluster", productlab.WebPort, web...)
	l.Backend(bgpNamespace, "bgp-v6", productlab.WebPort, web...)

	t.Run("sessions are Established with the password from a Secret", func(t *testing.T) {
		tl := l.For(t)
		tl.WaitBGPSessions(60*time.Second, bgpPeers, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State != "Established" {
				return fmt.Errorf("state %s, want Established", s.State)
			}
			if s.Peer == bgpPeerV4 && s.BFDState != "Up" {
				return fmt.Errorf("bfdState %q, want Up", s.BFDState)
			}
			return nil
		})
		// The router agrees: every node is an Established neighbour on both
		// families, and bfdd has an up session with each node's IPv4 address.
		netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
			ns, err := r.Neighbors(ctx)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				for _, a := range []netip.Addr{n.Addr4(), n.Addr6()} {
					i := slices.IndexFunc(ns, func(nb netlab.BGPNeighbor) bool { return nb.Address == a })
					if i < 0 || !ns[i].Established() {
						return fmt.Errorf("FRR's neighbour %s (%s) is not Established: %+v", a, n.Name(), ns)
					}
					if a.Is4() && ns[i].BFDStatus != "Up" {
						return fmt.Errorf("FRR's neighbour %s (%s) has BFD %q, want Up", a, n.Name(), ns[i].BFDStatus)
					}
				}
			}
			return nil
		})
		for _, p := range bgpPeers {
			out, err := tl.Kubectl("wait", "--for=condition=Ready", "--timeout=30s", "bgppeer/"+p)
			if err != nil {
				t.Errorf("BGPPeer %s not Ready: %v\n%s", p, err, out)
			}
		}
	})

	t.Run("Cluster policy: one ECMP next hop per node at FRR and the client reaches a pod", func(t *testing.T) {
		tl := l.For(t)
		prefix := netip.PrefixFrom(clusterAddr, 32)
		tl.WaitRouterNextHops(prefix, 30*time.Second, true, node1, node2, node3)
		route, _, err := r.Route(t.Context(), prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range route.Paths {
			if p.ASPath != fmt.Sprint(bgpNodeASN) {
				t.Errorf("path from %v has AS path %q, want %d", p.Peer, p.ASPath, bgpNodeASN)
			}
		}
		tl.WaitConnect(clusterAddr, 80, 30*time.Second, nil)
		// The router spreads the client's connections over the three nodes. With
		// Cluster policy kube-proxy masquerades them, so the source address a pod
		// sees tells the node they entered by: its LAN address, or its cni0
		// address for a pod on the same node.
		entry := map[netip.Addr]string{}
		for _, n := range nodes {
			entry[n.Addr4()] = n.Name()
			entry[n.PodCIDRs[0].Addr().Next()] = n.Name()
		}
		seen := map[string]int{}
		netlab.Eventually(t, 60*time.Second, func(ctx context.Context) error {
			rep, err := tl.Connect(ctx, clusterAddr, 80)
			if err != nil {
				return err
			}
			node, ok := entry[rep.Client.Addr()]
			if !ok {
				t.Errorf("pod %s saw the connection from %v, which is no node's address", rep.Pod, rep.Client.Addr())
			}
			seen[node]++
			if len(seen) < len(nodes) {
				return fmt.Errorf("the client's connections entered by %v, want every node", seen)
			}
			return nil
		})
		t.Logf("FRR routes %v over %v; the client's connections entered by %v", prefix, productlab.NodeAddrs(clusterAddr, nodes...), seen)
	})

	t.Run("a pool edit that leaves the address outside its pool keeps its route at FRR (the claim's pool)", func(t *testing.T) {
		tl := l.For(t)
		prefix := netip.PrefixFrom(clusterAddr, 32)
		tl.WaitRouterNextHops(prefix, 30*time.Second, true, node1, node2, node3)
		edit := func(lab *productlab.Lab, addresses string) {
			lab.Apply(fmt.Sprintf(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: %s}
spec:
  addresses: [%q]
  autoAssign: false
`, bgpPoolV4, addresses))
		}
		// 203.0.113.192/26 holds none of the group's addresses.
		edit(tl, "203.0.113.192/26")
		// The group's lab, not the subtest's, whose context ends first.
		t.Cleanup(func() { edit(l, "203.0.113.128/26") })
		waitOutside(t, tl, bgpPoolV4, clusterAddr)
		// The speakers react to a pool edit within a second; a wrong reaction
		// (resolving the pool by range) would have withdrawn the route by now.
		time.Sleep(3 * time.Second)
		tl.WaitRouterNextHops(prefix, 30*time.Second, true, node1, node2, node3)
		tl.WaitConnect(clusterAddr, 80, 30*time.Second, nil)
		if got := l.WaitAddresses(bgpNamespace, "bgp-cluster", 1, 30*time.Second)[0]; got != clusterAddr {
			t.Errorf("bgp-cluster moved from %v to %v after the pool edit", clusterAddr, got)
		}
	})

	t.Run("Local policy: next hops are the nodes with a ready pod and the pod sees the client", func(t *testing.T) {
		tl := l.For(t)
		addr := localAddr
		prefix := netip.PrefixFrom(addr, 32)
		app := tl.Backend(bgpNamespace, "bgp-local", productlab.WebPort, web[1]) // web-node2
		tl.WaitRouterNextHops(prefix, 30*time.Second, true, node2)
		client := tl.Client.Addr4()
		reply := tl.WaitConnect(addr, 80, 30*time.Second, func(rep netlab.PodReply) error {
			if rep.Client.Addr() != client {
				return fmt.Errorf("pod %s saw the client as %v, want %v", rep.Pod, rep.Client.Addr(), client)
			}
			return nil
		})
		if reply.Pod != web[1].Name {
			t.Errorf("the client reached pod %s, want %s (the only endpoint)", reply.Pod, web[1].Name)
		}

		pod3 := app.AddPod(node3, netlab.EndpointReady)
		tl.WaitRouterNextHops(prefix, 30*time.Second, true, node2, node3)
		// The router spreads connections over both nodes; each delivers to its own
		// pod without rewriting the source address.
		seen := map[string]bool{}
		netlab.Eventually(t, 60*time.Second, func(ctx context.Context) error {
			rep, err := tl.Connect(ctx, addr, 80)
			if err != nil {
				return err
			}
			if rep.Client.Addr() != client {
				t.Errorf("pod %s saw the client as %v, want %v", rep.Pod, rep.Client.Addr(), client)
			}
			seen[rep.Pod] = true
			if !seen[web[1].Name] || !seen[pod3.Name] {
				return fmt.Errorf("the client reached pods %v, want both %s and %s", seen, web[1].Name, pod3.Name)
			}
			return nil
		})
		if len(seen) != 2 {
			t.Errorf("the client reached pods %v, want only %s and %s", seen, web[1].Name, pod3.Name)
		}
	})

	t.Run("IPv6: routes over the IPv6 session with the nodes' IPv6 addresses as next hops", func(t *testing.T) {
		tl := l.For(t)
		prefix := netip.PrefixFrom(v6Addr, 128)
		tl.WaitRouterNextHops(prefix, 30*time.Second, true, node1, node2, node3)
		route, _, err := r.Route(t.Context(), prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range route.Paths {
			// FRR prints an empty AS path (iBGP) as "Local".
			if !p.Peer.Is6() || (p.ASPath != "" && p.ASPath != "Local") {
				t.Errorf("path %+v: want it from an IPv6 iBGP session (empty AS path)", p)
			}
		}
		reply := tl.WaitConnect(v6Addr, 80, 30*time.Second, nil)
		t.Logf("the client reached pod %s through %v", reply.Pod, v6Addr)
	})

	t.Run("communities and localPref arrive at FRR", func(t *testing.T) {
		tl := l.For(t)
		tl.Apply(bgpAdvertisements(
			`  communities: ["64513:100", "64513:200"]
  largeCommunities: ["64513:1:100"]`,
			`  communities: ["64512:300"]
  localPref: 250`))
		t.Cleanup(func() { l.Apply(bgpAdvertisements("", "")) }) // l: t's context ends before its cleanup
		check := func(prefix netip.Prefix, communities, large []string, localPref uint32) {
			t.Helper()
			netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
				route, ok, err := r.Route(ctx, prefix)
				if err != nil {
					return err
				}
				if !ok || len(route.Paths) != len(nodes) {
					return fmt.Errorf("FRR has %d paths for %s, want %d: %+v", len(route.Paths), prefix, len(nodes), route)
				}
				for _, p := range route.Paths {
					c, lc := slices.Sorted(slices.Values(p.Communities)), slices.Sorted(slices.Values(p.LargeCommunities))
					if !slices.Equal(c, communities) || !slices.Equal(lc, large) {
						return fmt.Errorf("path from %v to %s has communities %q and large communities %q, want %q and %q",
							p.Peer, prefix, c, lc, communities, large)
					}
					if localPref != 0 && p.LocalPref != localPref {
						return fmt.Errorf("path from %v to %s has localPref %d, want %d", p.Peer, prefix, p.LocalPref, localPref)
					}
				}
				return nil
			})
		}
		check(netip.PrefixFrom(clusterAddr, 32), []string{"64513:100", "64513:200"}, []string{"64513:1:100"}, 0)
		check(netip.PrefixFrom(v6Addr, 128), []string{"64512:300"}, nil, 250)
	})

	t.Run("a wrong password keeps the sessions down and says so; the right one restores them", func(t *testing.T) {
		tl := l.For(t)
		prefix := netip.PrefixFrom(clusterAddr, 32)
		changed := time.Now().Truncate(time.Second)
		tl.Apply(bgpObjects("not-the-routers-password"))
		t.Cleanup(func() { l.Apply(bgpObjects(bgpPassword)) })
		tl.WaitBGPSessions(120*time.Second, bgpPeers, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State == "Established" {
				return fmt.Errorf("still Established")
			}
			if !strings.Contains(s.LastError, "password") {
				return fmt.Errorf("lastError %q does not mention the password", s.LastError)
			}
			return nil
		})
		tl.WaitRouterNextHops(prefix, 10*time.Second, true)
		netlab.Eventually(t, 10*time.Second, func(ctx context.Context) error {
			ns, err := r.Neighbors(ctx)
			if err != nil {
				return err
			}
			for _, nb := range ns {
				if nb.Established() {
					return fmt.Errorf("FRR's neighbour %s is Established with a wrong password", nb.Address)
				}
			}
			return nil
		})
		netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
			evs, err := tl.Kube.CoreV1().Events(bgpNamespace).List(ctx, metav1.ListOptions{
				FieldSelector: "involvedObject.kind=BGPPeer,involvedObject.name=" + bgpPeerV4,
			})
			if err != nil {
				return err
			}
			var seen []string
			for _, e := range evs.Items {
				if e.Reason == "BGPSessionFailed" && strings.Contains(e.Message, "password") && !e.LastTimestamp.Time.Before(changed) {
					return nil
				}
				seen = append(seen, e.Reason+": "+e.Message)
			}
			return fmt.Errorf("no BGPSessionFailed event mentioning the password on BGPPeer %s since %v; events: %q", bgpPeerV4, changed, seen)
		})
		if _, err := tl.Connect(t.Context(), clusterAddr, 80); err == nil {
			t.Errorf("the client reached %v with every session down", clusterAddr)
		}

		tl.Apply(bgpObjects(bgpPassword))
		tl.WaitBGPSessions(60*time.Second, bgpPeers, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State != "Established" {
				return fmt.Errorf("state %s, want Established", s.State)
			}
			return nil
		})
		tl.WaitRouterNextHops(prefix, 30*time.Second, true, node1, node2, node3)
		tl.WaitConnect(clusterAddr, 80, 30*time.Second, nil)
	})

	t.Run("BFD: a node cut off loses its next hop and the client keeps reaching the Service", func(t *testing.T) {
		tl := l.For(t)
		prefix := netip.PrefixFrom(clusterAddr, 32)
		tl.WaitBGPSessions(60*time.Second, bgpPeers, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State != "Established" || (s.Peer == bgpPeerV4 && s.BFDState != "Up") {
				return fmt.Errorf("state %s, bfdState %q; want Established with BFD Up", s.State, s.BFDState)
			}
			return nil
		})
		tl.WaitRouterNextHops(prefix, 30*time.Second, true, node1, node2, node3)

		// node3 has no pod of the Service (web pods are on node1 and node2), so the
		// remaining nodes can serve every connection. Restore it whatever happens,
		// through the group's view (this subtest's context ends before its cleanup).
		detached, killed := false, false
		t.Cleanup(func() {
			if detached {
				if err := node3.LAN.Attach(); err != nil {
					t.Errorf("reattach node3: %v", err)
				}
			}
			if killed {
				l.StartSpeaker(node3)
				l.WaitSpeakerReady(node3)
			}
		})
		const interval, timeout = 100 * time.Millisecond, 2 * time.Second
		prober := tl.Probe(clusterAddr, 80, interval, timeout)
		defer prober.Stop()
		time.Sleep(10 * interval) // some connections before the failure, for the outage figure
		cut := time.Now()
		if err := node3.LAN.Detach(); err != nil {
			t.Fatal(err)
		}
		detached = true
		tl.KillSpeaker(node3)
		killed = true

		tl.WaitRouterNextHops(prefix, 30*time.Second, false, node1, node2)
		bgpGone := time.Since(cut)
		tl.WaitRouterNextHops(prefix, 30*time.Second, true, node1, node2)
		converged := time.Now()
		reset, err := e2ebgp.LastReset(t.Context(), r, node3.Addr4())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.ToLower(reset), "bfd") {
			t.Errorf("FRR's neighbour %s (node3) was last reset with %s; want BFD (the hold time is 90 s)", node3.Addr4(), reset)
		}
		t.Logf("FRR dropped node3's next hop %v after its LAN link was cut (BFD 300ms x 3); the router's kernel route %v; FRR: %s",
			bgpGone.Round(time.Millisecond), converged.Sub(cut).Round(time.Millisecond), reset)

		// Once the router forwards over node1 and node2 only, every connection
		// reaches a pod.
		netlab.Eventually(t, 30*time.Second, func(context.Context) error {
			var after int
			for _, a := range prober.Attempts() {
				if a.Start.After(converged) {
					after++
				}
			}
			if after < 30 {
				return fmt.Errorf("%d connections since the router converged, waiting for 30", after)
			}
			return nil
		})
		as := prober.Stop()
		var failedAfter []string
		for _, a := range productlab.Failed(as) {
			if a.Start.After(converged) {
				failedAfter = append(failedAfter, fmt.Sprintf("%s: %v", a.Start.Format("15:04:05.000"), a.Err))
			}
		}
		if len(failedAfter) > 0 {
			t.Errorf("%d connections started after the router dropped node3 failed:\n%s", len(failedAfter), strings.Join(failedAfter, "\n"))
		}
		outage, ok := productlab.Outage(as, cut, interval)
		t.Logf("client: %d connections, %d failed in all; outage %v (recovered %v)", len(as), len(productlab.Failed(as)), outage.Round(time.Millisecond), ok)

		// Back: node3 peers again and FRR uses it again.
		if err := node3.LAN.Attach(); err != nil {
			t.Fatal(err)
		}
		detached = false
		tl.StartSpeaker(node3)
		killed = false
		tl.WaitSpeakerReady(node3)
		tl.WaitBGPSessions(90*time.Second, bgpPeers, func(_ string, s v1alpha1.BGPSessionStatus) error {
			if s.State != "Established" {
				return fmt.Errorf("state %s, want Established", s.State)
			}
			return nil
		})
		tl.WaitRouterNextHops(prefix, 30*time.Second, true, node1, node2, node3)
		tl.WaitConnect(clusterAddr, 80, 30*time.Second, nil)
	})
}
