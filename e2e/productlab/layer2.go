package productlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/speaker"
)

// ExcludeLabel is the Node label that keeps a node from announcing load-balancer
// addresses (the one Kubernetes' service controller reads).
const ExcludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// NodeByMAC returns the node whose LAN interface has mac, or nil.
func (l *Lab) NodeByMAC(mac net.HardwareAddr) *netlab.Node {
	for _, n := range l.Cluster.Nodes {
		if n.LAN != nil && n.LAN.MAC.String() == mac.String() {
			return n
		}
	}
	return nil
}

// macLine matches a MAC address in ndisc6's output.
var macLine = regexp.MustCompile(`(?i)\b([0-9a-f]{2}(?::[0-9a-f]{2}){5})\b`)

// NDPAll sends one neighbour solicitation for the IPv6 address addr from the client
// and collects every distinct MAC that answers within a second (two MACs mean two
// hosts claim the address). It returns an error wrapping netlab.ErrNoAnswer when
// nobody does.
func (l *Lab) NDPAll(ctx context.Context, addr netip.Addr) ([]net.HardwareAddr, error) {
	if !addr.Is6() || addr.Is4In6() {
		return nil, fmt.Errorf("productlab: NDP for %s: not an IPv6 address", addr)
	}
	// -m: wait for and print every answer; -q: only the link-layer addresses.
	out, _ := l.Client.Run(ctx, "ndisc6", "-q", "-m", "-n", "-r", "1", "-w", "1000", addr.String(), "eth0")
	var macs []net.HardwareAddr
	for _, m := range macLine.FindAllString(out, -1) {
		mac, err := net.ParseMAC(m)
		if err != nil {
			continue
		}
		if !slices.ContainsFunc(macs, func(x net.HardwareAddr) bool { return x.String() == mac.String() }) {
			macs = append(macs, mac)
		}
	}
	if len(macs) == 0 {
		return nil, fmt.Errorf("%w: NDP for %s from the client: %s", netlab.ErrNoAnswer, addr, strings.TrimSpace(out))
	}
	return macs, nil
}

// Answering asks from the client who answers for addr, by ARP (IPv4) or NDP (IPv6),
// and returns the answering nodes' names in order of arrival; a MAC of no node is
// returned as the MAC itself. It returns an error wrapping netlab.ErrNoAnswer when
// nobody answers.
func (l *Lab) Answering(ctx context.Context, addr netip.Addr) ([]string, error) {
	var macs []net.HardwareAddr
	var err error
	if addr.Is4() {
		macs, err = l.Client.ARPAll(ctx, addr, time.Second)
	} else {
		macs, err = l.NDPAll(ctx, addr)
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(macs))
	for _, m := range macs {
		if n := l.NodeByMAC(m); n != nil {
			names = append(names, n.Name())
		} else {
			names = append(names, m.String())
		}
	}
	return names, nil
}

// WaitAnnouncer waits until exactly one node answers ARP/NDP for addr from the
// client and ok (when not nil) accepts it, and returns its name.
func (l *Lab) WaitAnnouncer(addr netip.Addr, timeout time.Duration, ok func(node string) error) string {
	l.T.Helper()
	var owner string
	netlab.Eventually(l.T, timeout, func(ctx context.Context) error {
		names, err := l.Answering(ctx, addr)
		if err != nil {
			return err
		}
		if len(names) != 1 {
			return fmt.Errorf("%v answer for %s, want exactly one node", names, addr)
		}
		if ok != nil {
			if err := ok(names[0]); err != nil {
				return fmt.Errorf("%s answers for %s: %w", names[0], addr, err)
			}
		}
		owner = names[0]
		return nil
	})
	return owner
}

// ErrNotAnnounced reports that no SpeakerStatus lists an address.
var ErrNotAnnounced = errors.New("productlab: no SpeakerStatus lists the address")

// StatusAnnouncers returns the nodes whose SpeakerStatus lists addr for the Service
// namespace/name in status.layer2, sorted.
func (l *Lab) StatusAnnouncers(ctx context.Context, addr netip.Addr, namespace, name string) ([]string, error) {
	list, err := l.Herald.HeraldV1alpha1().SpeakerStatuses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("productlab: list SpeakerStatuses: %w", err)
	}
	var out []string
	for _, s := range list.Items {
		for _, a := range s.Status.Layer2 {
			if a.Address == addr.String() && a.Service == namespace+"/"+name {
				out = append(out, s.Name)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// WaitStatusAnnouncer waits until exactly node's SpeakerStatus lists addr for the
// Service namespace/name.
func (l *Lab) WaitStatusAnnouncer(addr netip.Addr, namespace, name, node string, timeout time.Duration) {
	l.T.Helper()
	netlab.Eventually(l.T, timeout, func(ctx context.Context) error {
		got, err := l.StatusAnnouncers(ctx, addr, namespace, name)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0] != node {
			return fmt.Errorf("SpeakerStatuses list %s for %s/%s on %v, want only %s", addr, namespace, name, got, node)
		}
		return nil
	})
}

// SetNodeLabel sets the label key on the Node name to value, or removes it when
// value is nil.
func (l *Lab) SetNodeLabel(ctx context.Context, name, key string, value *string) error {
	nodes := l.Kube.CoreV1().Nodes()
	n, err := nodes.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("productlab: get Node %s: %w", name, err)
	}
	if value == nil {
		if _, ok := n.Labels[key]; !ok {
			return nil
		}
		delete(n.Labels, key)
	} else {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[key] = *value
	}
	if _, err := nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("productlab: label Node %s: %w", name, err)
	}
	return nil
}

// SetNetworkUnavailable writes the Node's NetworkUnavailable condition, True when
// unavailable, as a network plugin would.
func (l *Lab) SetNetworkUnavailable(ctx context.Context, name string, unavailable bool) error {
	nodes := l.Kube.CoreV1().Nodes()
	n, err := nodes.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("productlab: get Node %s: %w", name, err)
	}
	status, reason := corev1.ConditionFalse, "RouteCreated"
	if unavailable {
		status, reason = corev1.ConditionTrue, "NoRouteCreated"
	}
	conds := slices.DeleteFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type == corev1.NodeNetworkUnavailable
	})
	n.Status.Conditions = append(conds, corev1.NodeCondition{
		Type: corev1.NodeNetworkUnavailable, Status: status, Reason: reason,
		Message: "written by the e2e suite", LastTransitionTime: metav1.Now(),
	})
	if _, err := nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("productlab: write the conditions of Node %s: %w", name, err)
	}
	return nil
}

// State returns pod's endpoint state in the app's EndpointSlices (EndpointReady
// for a pod that is not the app's).
func (a *App) State(pod *netlab.Pod) netlab.EndpointState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state[pod]
}

// SpeakerMetric scrapes n's speaker's /metrics and returns the value of the series
// written exactly as the exposition writes it (see ControllerMetric).
func (l *Lab) SpeakerMetric(ctx context.Context, n *netlab.Node, series string) (float64, error) {
	code, body, err := n.HTTPGet(ctx, "http://"+SpeakerMetrics+"/metrics")
	if err != nil {
		return 0, fmt.Errorf("productlab: speaker on %s /metrics: %w", n.Name(), err)
	}
	if code != 200 {
		return 0, fmt.Errorf("productlab: speaker on %s: /metrics answered %d", n.Name(), code)
	}
	return metricValue(body, series)
}

// AddrRankingFirst returns the first address of pool from its skip-th on whose
// layer-2 election ranks node first among the lab's nodes, and false when there is
// none.
func (l *Lab) AddrRankingFirst(pool netip.Prefix, skip int, node string) (netip.Addr, bool) {
	names := l.Cluster.NodeNames()
	for a := netlab.NthAddr(pool.Addr(), skip); pool.Contains(a); a = a.Next() {
		if speaker.Ranking(a, names)[0] == node {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// L2PoolManifest is an IPPool named name holding prefixes and an L2Advertisement
// of the same name announcing it; autoAssign false serves only Services that name
// the pool.
func L2PoolManifest(name string, autoAssign bool, prefixes ...netip.Prefix) string {
	var addrs []string
	for _, p := range prefixes {
		addrs = append(addrs, fmt.Sprintf("%q", p.String()))
	}
	return fmt.Sprintf(`
apiVersion: herald.dev/v1alpha1
kind: IPPool
metadata: {name: %[1]s}
spec:
  addresses: [%[2]s]
  autoAssign: %[3]t
---
apiVersion: herald.dev/v1alpha1
kind: L2Advertisement
metadata: {name: %[1]s}
spec:
  ipPools: [%[1]s]
`, name, strings.Join(addrs, ", "), autoAssign)
}
