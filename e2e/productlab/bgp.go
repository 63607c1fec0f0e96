package productlab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/netlab"
)

// RouterNextHops returns the next hops of the selected paths (best and multipath)
// the lab's FRR router has for exactly prefix: the ECMP set of its BGP table,
// sorted; none when it has no route.
func (l *Lab) RouterNextHops(ctx context.Context, prefix netip.Prefix) ([]netip.Addr, error) {
	route, ok, err := l.Cluster.Router.Route(ctx, prefix)
	if err != nil || !ok {
		return nil, err
	}
	return route.SelectedNextHops(), nil
}

// RouterKernelNextHops returns the gateways of the router's kernel route to
// exactly prefix (see netlab.Router.KernelNextHops).
func (l *Lab) RouterKernelNextHops(ctx context.Context, prefix netip.Prefix) ([]netip.Addr, error) {
	return l.Cluster.Router.KernelNextHops(ctx, prefix)
}

// NodeAddrs returns the nodes' LAN addresses of the family of like, sorted: the
// next hops a router sees for routes those nodes advertise.
func NodeAddrs(like netip.Addr, nodes ...*netlab.Node) []netip.Addr {
	out := make([]netip.Addr, 0, len(nodes))
	for _, n := range nodes {
		if like.Is4() {
			out = append(out, n.Addr4())
		} else {
			out = append(out, n.Addr6())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// WaitRouterNextHops waits until the router's BGP table (FRR's selected paths)
// sends prefix over exactly the LAN addresses of nodes (none: until FRR has no
// route) and, when kernel is true, the router's kernel route too. The failure
// message names the next hops last seen.
func (l *Lab) WaitRouterNextHops(prefix netip.Prefix, timeout time.Duration, kernel bool, nodes ...*netlab.Node) {
	l.T.Helper()
	want := NodeAddrs(prefix.Addr(), nodes...)
	netlab.Eventually(l.T, timeout, func(ctx context.Context) error {
		got, err := l.RouterNextHops(ctx, prefix)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("FRR's BGP table sends %s via %v, want %v (%s)", prefix, got, want, nodeList(nodes))
		}
		if !kernel {
			return nil
		}
		got, err = l.RouterKernelNextHops(ctx, prefix)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("the router's kernel sends %s via %v, want %v (%s)", prefix, got, want, nodeList(nodes))
		}
		return nil
	})
}

func nodeList(nodes []*netlab.Node) string {
	if len(nodes) == 0 {
		return "no node"
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name()
	}
	return fmt.Sprint(names)
}

// BGPSessions returns each node's BGP sessions as its SpeakerStatus reports them
// (status.bgpSessions), by node name.
func (l *Lab) BGPSessions(ctx context.Context) (map[string][]v1alpha1.BGPSessionStatus, error) {
	list, err := l.Herald.HeraldV1alpha1().SpeakerStatuses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("productlab: list SpeakerStatuses: %w", err)
	}
	out := map[string][]v1alpha1.BGPSessionStatus{}
	for _, s := range list.Items {
		out[s.Name] = s.Status.BGPSessions
	}
	return out, nil
}

// WaitBGPSessions waits until the SpeakerStatus of every node in nodes (every
// node of the lab when none is given) lists one session per name in peers, in
// that order, each accepted by check (nil accepts any).
func (l *Lab) WaitBGPSessions(timeout time.Duration, peers []string, check func(node string, s v1alpha1.BGPSessionStatus) error, nodes ...*netlab.Node) {
	l.T.Helper()
	if len(nodes) == 0 {
		nodes = l.Cluster.Nodes
	}
	netlab.Eventually(l.T, timeout, func(ctx context.Context) error {
		all, err := l.BGPSessions(ctx)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			ss := all[n.Name()]
			names := make([]string, len(ss))
			for i, s := range ss {
				names[i] = s.Peer
			}
			if !slices.Equal(names, peers) {
				return fmt.Errorf("SpeakerStatus %s lists sessions with %q, want %q: %+v", n.Name(), names, peers, ss)
			}
			if check == nil {
				continue
			}
			for _, s := range ss {
				if err := check(n.Name(), s); err != nil {
					return fmt.Errorf("SpeakerStatus %s, session with %s: %w (%+v)", n.Name(), s.Peer, err, s)
				}
			}
		}
		return nil
	})
}

// StartRouterBGP starts BGP on the lab's router (FRR, its routes installed in
// its kernel) with every node as a neighbour of AS nodeASN (hold time 9 s,
// keepalive 3 s, BFD when bfd is true), and applies an IPPool named pool
// holding prefixes, a BGPAdvertisement of the same name, and the BGPPeer
// "router" towards the router with the same timers (and BFD 300 ms x 3 when
// bfd is true).
func (l *Lab) StartRouterBGP(pool string, routerASN, nodeASN uint32, bfd bool, prefixes ...netip.Prefix) {
	l.T.Helper()
	r := l.Cluster.Router
	var nbrs []netlab.BGPNeighborConfig
	for _, n := range l.Cluster.Nodes {
		nbrs = append(nbrs, netlab.BGPNeighborConfig{
			Address: n.Addr4(), ASN: nodeASN, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, BFD: bfd,
		})
	}
	r.StartBGP(netlab.BGPConfig{ASN: routerASN, Neighbors: nbrs, InstallRoutes: true})
	var addrs []string
	for _, p := range prefixes {
		addrs = append(addrs, fmt.Sprintf("%q", p.String()))
	}
	peerBFD := ""
	if bfd {
		peerBFD = "\n  bfd: {minRx: 300ms, minTx: 300ms, multiplier: 3}"
	}
	l.Apply(fmt.Sprintf(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: %[1]s}
spec:
  addresses: [%[2]s]
---
apiVersion: herald.dev/v1alpha1
kind: BGPAdvertisement
metadata: {name: %[1]s}
spec:
  ipPools: [%[1]s]
---
apiVersion: herald.dev/v1alpha1
kind: BGPPeer
metadata: {name: router}
spec:
  peerAddress: "%[3]s"
  peerASN: %[4]d
  myASN: %[5]d
  holdTime: 9s
  keepaliveTime: 3s%[6]s
`, pool, strings.Join(addrs, ", "), r.Addr4(), routerASN, nodeASN, peerBFD))
}
