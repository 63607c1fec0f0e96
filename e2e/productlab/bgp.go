package productlab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
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
