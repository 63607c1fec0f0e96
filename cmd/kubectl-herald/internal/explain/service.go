package explain

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/eligibility"
)

// Service explains one Service: its address and pool or why it has none,
// who may announce it and why each other node may not, who announces it
// now, and the node-side prerequisites.
func Service(c Cluster, in ServiceInput) string {
	svc := in.Service
	w := &writer{}
	policy := cmp.Or(string(svc.Spec.ExternalTrafficPolicy), "Cluster")
	w.line(0, "Service %s/%s: type %s, externalTrafficPolicy %s%s.", svc.Namespace, svc.Name, svc.Spec.Type, policy, classText(svc))
	w.blank()

	m := c.model()
	held := heldAddresses(c, svc)
	switch {
	case svc.Spec.Type != corev1.ServiceTypeLoadBalancer && len(svc.Spec.ExternalIPs) == 0:
		w.line(0, "No address: Herald gives addresses only to Services of type LoadBalancer, and claims spec.externalIPs of Services of any type; this Service is of type %s and has no external IP.", svc.Spec.Type)
	case svc.Spec.Type == corev1.ServiceTypeLoadBalancer && len(config.LoadBalancerAddresses(svc)) == 0:
		explainPending(w, c, in)
	}
	for _, h := range held {
		w.line(0, "%s", h.sentence(svc))
	}
	if cond := apimeta.FindStatusCondition(svc.Status.Conditions, config.ConditionAddressAllocated); cond != nil && cond.Status == metav1.ConditionFalse && len(config.LoadBalancerAddresses(svc)) > 0 {
		w.line(1, "Herald reports %s: %s", cond.Reason, cond.Message)
	}
	if cond := apimeta.FindStatusCondition(svc.Status.Conditions, config.ConditionExternalIPsAccepted); cond != nil && cond.Status == metav1.ConditionFalse {
		w.line(0, "Its spec.externalIPs are not claimed, so nobody announces them: %s: %s", cond.Reason, cond.Message)
	}
	usesL2 := false
	for _, h := range held {
		if h.claim == nil || !h.holds {
			continue
		}
		w.blank()
		usesL2 = explainAnnouncement(w, c, m, in, h) || usesL2
	}
	w.blank()
	prerequisites(w, c, usesL2 || len(held) == 0)
	unreadable(w, c)
	return w.String()
}

// unreadable says what the explanation could not read.
func unreadable(w *writer, c Cluster) {
	if len(c.Unreadable) == 0 {
		return
	}
	w.blank()
	w.line(0, "Not read (the explanation above lacks them): %s.", strings.Join(c.Unreadable, "; "))
}

func classText(svc *corev1.Service) string {
	if c := svc.Spec.LoadBalancerClass; c != nil && *c != "" {
		return ", loadBalancerClass " + *c
	}
	return ""
}

// heldAddress is one address a Service holds, with its claim.
type heldAddress struct {
	addr       netip.Addr
	externalIP bool
	claim      *config.Claim
	// holds is true when the claim lists this Service (its UID).
	holds bool
}

func heldAddresses(c Cluster, svc *corev1.Service) []heldAddress {
	claims := map[netip.Addr]*config.Claim{}
	for _, o := range c.Claims {
		cl, err := config.ClaimOf(o)
		if err == nil {
			claims[cl.Addr] = &cl
		}
	}
	var out []heldAddress
	add := func(a netip.Addr, ext bool) {
		h := heldAddress{addr: a, externalIP: ext, claim: claims[a]}
		h.holds = h.claim != nil && h.claim.Holds(string(svc.UID), ext)
		out = append(out, h)
	}
	for _, a := range config.LoadBalancerAddresses(svc) {
		add(a, false)
	}
	for _, a := range config.ExternalIPAddresses(svc) {
		add(a, true)
	}
	return out
}

func (h heldAddress) sentence(svc *corev1.Service) string {
	where := "Address"
	if h.externalIP {
		where = "External IP"
	}
	switch {
	case h.claim == nil && h.externalIP:
		return fmt.Sprintf("%s %s: not claimed by Herald (no AddressClaim), so nobody announces it; kube-proxy still routes it.", where, h.addr)
	case h.claim == nil:
		return fmt.Sprintf("%s %s: in the Service's status, but no AddressClaim records it, so Herald's speakers do not announce it (another load balancer wrote it, or Herald's controller has not imported it yet).", where, h.addr)
	case !h.holds:
		return fmt.Sprintf("%s %s: its AddressClaim lists other holders, not this Service, so Herald's speakers do not announce it for this Service.", where, h.addr)
	}
	s := fmt.Sprintf("%s %s, from IPPool %s (AddressClaim %s).", where, h.addr, orText(h.claim.Pool, "none: imported from a status, in no pool"), config.ClaimName(h.addr))
	var others []string
	for _, o := range h.claim.Holders {
		if o.UID == string(svc.UID) {
			continue
		}
		// Tenancy: another namespace's Service is not named.
		if o.Namespace == svc.Namespace {
			others = append(others, o.Name)
		} else {
			others = append(others, "a Service of another namespace")
		}
	}
	if len(others) > 0 {
		s += " Shared with " + strings.Join(others, ", ") + "."
	}
	return s
}

func orText(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// explainPending says why a Service of type LoadBalancer has no address.
func explainPending(w *writer, c Cluster, in ServiceInput) {
	svc := in.Service
	w.line(0, "No address (pending).")
	cond := apimeta.FindStatusCondition(svc.Status.Conditions, config.ConditionAddressAllocated)
	switch {
	case cond != nil && cond.Status == metav1.ConditionFalse:
		w.line(1, "Why: %s: %s", cond.Reason, cond.Message)
		if hint := pendingHint(c, cond.Reason); hint != "" {
			w.line(1, "%s", hint)
		}
	case svc.Spec.LoadBalancerClass != nil && *svc.Spec.LoadBalancerClass != "":
		w.line(1, "Why: it has loadBalancerClass %s and Herald has written nothing about it: Herald serves a class only when its controller runs with --load-balancer-class=%s (by default it serves Services without a class).", *svc.Spec.LoadBalancerClass, *svc.Spec.LoadBalancerClass)
	case len(c.Pools) == 0:
		w.line(1, "Why: there is no IPPool. Create one (docs/reference.md, IPPool).")
	default:
		w.line(1, "Why: Herald's controller has not decided about it (no %s condition): check that it runs (kubectl -n herald-system get pods) and leads (its logs).", config.ConditionAddressAllocated)
	}
	for _, e := range latestWarnings(in.Events, 3) {
		w.line(1, "Event %s (x%d): %s", e.Reason, max(e.Count, 1), e.Message)
	}
}

// pendingHint adds what the cluster shows about a reason of the controller.
func pendingHint(c Cluster, reason string) string {
	switch reason {
	case "PoolExhausted", "FamilyUnavailable", "PoolNotAllowed":
		if len(c.Pools) == 0 {
			return "There is no IPPool: create one."
		}
		var parts []string
		for _, p := range c.Pools {
			auto := "autoAssign"
			if p.Spec.AutoAssign != nil && !*p.Spec.AutoAssign {
				auto = "by name only"
			}
			parts = append(parts, fmt.Sprintf("%s (%s, %s)", p.Name, auto, usageText(p.Status)))
		}
		return "Pools: " + strings.Join(parts, "; ") + "."
	case "PoolNotFound":
		return "Create that IPPool, or correct the herald.dev/pool annotation."
	case "AddressNotInAnyPool":
		return "Add the requested address to an IPPool, or request one that is in a pool."
	}
	return ""
}

func usageText(s v1alpha1.IPPoolStatus) string {
	var parts []string
	if s.IPv4 != nil {
		parts = append(parts, fmt.Sprintf("IPv4 %s of %s used", s.IPv4.Used, s.IPv4.Total))
	}
	if s.IPv6 != nil {
		parts = append(parts, fmt.Sprintf("IPv6 %s of %s used", s.IPv6.Used, s.IPv6.Total))
	}
	if len(parts) == 0 {
		return "no usage reported yet"
	}
	return strings.Join(parts, ", ")
}

// latestWarnings returns the n most recent Warning events, one per reason.
func latestWarnings(events []corev1.Event, n int) []corev1.Event {
	ws := slices.Clone(events)
	ws = slices.DeleteFunc(ws, func(e corev1.Event) bool { return e.Type != corev1.EventTypeWarning })
	slices.SortFunc(ws, func(a, b corev1.Event) int { return eventTime(b).Time.Compare(eventTime(a).Time) })
	var out []corev1.Event
	seen := map[string]bool{}
	for _, e := range ws {
		if !seen[e.Reason] && len(out) < n {
			seen[e.Reason] = true
			out = append(out, e)
		}
	}
	return out
}

func eventTime(e corev1.Event) metav1.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp
	case !e.EventTime.IsZero():
		return metav1.Time{Time: e.EventTime.Time}
	}
	return e.CreationTimestamp
}

// explainAnnouncement says who may announce one claimed address, who does
// now, and why every other node may not. It reports whether the address is
// announced at layer 2.
func explainAnnouncement(w *writer, c Cluster, m *config.Model, in ServiceInput, h heldAddress) bool {
	svc := in.Service
	pool := h.claim.Pool
	addrType := discoveryv1.AddressTypeIPv4
	if h.addr.Is6() {
		addrType = discoveryv1.AddressTypeIPv6
	}
	nodes := slices.Clone(c.Nodes)
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	states := make([]eligibility.NodeState, 0, len(nodes))
	for _, n := range nodes {
		states = append(states, eligibility.NodeStateFromNode(n, speakerReady(c.speaker(n.Name))))
	}
	elig := eligibility.EligibleNodes(eligibility.ServiceStateFromService(svc, in.EndpointSlices, addrType), states)
	why := map[string]eligibility.Reason{}
	for _, v := range elig.Ineligible {
		why[v.Node] = v.Reason
	}

	var l2Nodes, bgpNodes []*corev1.Node
	l2Ads, bgpAds := map[string]bool{}, map[string]bool{}
	for _, n := range nodes {
		if ads := m.L2AdvertisementsFor(pool, n.Labels); len(ads) > 0 {
			l2Nodes = append(l2Nodes, n)
			for _, a := range ads {
				l2Ads[a.Name] = true
			}
		}
		if ads := m.BGPAdvertisementsFor(pool, n.Labels); len(ads) > 0 {
			bgpNodes = append(bgpNodes, n)
			for _, a := range ads {
				bgpAds[a.Name] = true
			}
		}
	}
	w.line(0, "Announcing %s (IPPool %s):", h.addr, orText(pool, "none"))
	if len(nodes) == 0 {
		w.line(1, "Which nodes may announce it is unknown: no Node could be read.")
		return false
	}
	if pool == "" || (len(l2Nodes) == 0 && len(bgpNodes) == 0) {
		w.line(1, "Nobody may announce it: no L2Advertisement or BGPAdvertisement of IPPool %s selects any node. Create one, or widen its nodeSelectors.", orText(pool, "(none)"))
		return false
	}
	if len(elig.Nodes) == 0 && svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		w.line(1, "Nobody may announce it: the Service has no ready (or serving) endpoint on any node. Check its Pods and its selector (kubectl get endpointslices -l kubernetes.io/service-name=%s -n %s).", svc.Name, svc.Namespace)
	}
	if elig.ServingTerminating {
		w.line(1, "No node has a ready endpoint: the nodes with serving-but-terminating endpoints announce it while the rollout drains.")
	}
	if len(l2Nodes) > 0 {
		w.line(1, "Layer 2 (ARP/NDP), by L2Advertisement %s:", strings.Join(sortedKeys(l2Ads), ", "))
		var now []string
		for _, s := range c.Speakers {
			for _, a := range s.Status.Layer2 {
				if a.Address == h.addr.String() && a.Service == svc.Namespace+"/"+svc.Name {
					now = append(now, fmt.Sprintf("%s on %s since %s", s.Name, orText(strings.Join(a.Interfaces, ", "), "(no interface listed)"), a.Since.UTC().Format("2006-01-02 15:04:05Z")))
				}
			}
		}
		if len(now) == 0 {
			w.line(2, "Announced now by: nobody.")
		} else {
			w.line(2, "Announced now by: %s.", strings.Join(now, "; "))
		}
		cands := eligibleAmong(elig.Nodes, l2Nodes)
		if len(cands) == 0 {
			w.line(2, "May announce: no node.")
		} else {
			order := eligibility.Ranking(h.addr, cands)
			w.line(2, "May announce: %s (in takeover order: the first announces).", strings.Join(order, ", "))
		}
		for _, n := range nodes {
			if r := nodeWhyNot(c, n, why, l2Nodes, "L2Advertisement", pool); r != "" {
				w.line(2, "%s may not: %s.", n.Name, r)
			}
		}
	}
	if len(bgpNodes) > 0 {
		w.line(1, "BGP, by BGPAdvertisement %s:", strings.Join(sortedKeys(bgpAds), ", "))
		cands := eligibleAmong(elig.Nodes, bgpNodes)
		var advertising []string
		for _, name := range cands {
			n := nodeNamed(nodes, name)
			sessions := sessionsFor(c, m, n, pool)
			if len(sessions) == 0 {
				w.line(2, "%s may advertise it, but no BGPPeer that its BGPAdvertisements send to selects the node.", name)
				continue
			}
			up := false
			for _, s := range sessions {
				up = up || s.State == "Established"
			}
			if up {
				advertising = append(advertising, name)
			}
			w.line(2, "%s advertises it over: %s.", name, strings.Join(sessionTexts(sessions), "; "))
		}
		if len(advertising) == 0 {
			w.line(2, "Advertised now by: nobody (no eligible node has an Established session).")
		} else {
			w.line(2, "Advertised now by: %s.", strings.Join(advertising, ", "))
		}
		for _, n := range nodes {
			if r := nodeWhyNot(c, n, why, bgpNodes, "BGPAdvertisement", pool); r != "" {
				w.line(2, "%s may not: %s.", n.Name, r)
			}
		}
	}
	return len(l2Nodes) > 0
}

func speakerReady(s *v1alpha1.SpeakerStatus) bool {
	return s != nil && apimeta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady)
}

func eligibleAmong(eligible []string, selected []*corev1.Node) []string {
	var out []string
	for _, n := range selected {
		if slices.Contains(eligible, n.Name) {
			out = append(out, n.Name)
		}
	}
	return out
}

func nodeNamed(nodes []*corev1.Node, name string) *corev1.Node {
	for _, n := range nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// nodeWhyNot says why node n may not announce, or "" when it may.
func nodeWhyNot(c Cluster, n *corev1.Node, why map[string]eligibility.Reason, selected []*corev1.Node, adKind, pool string) string {
	if !slices.Contains(selected, n) {
		return fmt.Sprintf("no %s of IPPool %s selects it (their nodeSelectors do not match its labels)", adKind, pool)
	}
	r, ok := why[n.Name]
	if !ok {
		return ""
	}
	switch r {
	case eligibility.ReasonExcludedFromLoadBalancers:
		return "it carries the label " + corev1.LabelNodeExcludeBalancers + " (kubeadm puts it on control-plane nodes)"
	case eligibility.ReasonNetworkUnavailable:
		return "its NetworkUnavailable condition is True (its network is not set up)"
	case eligibility.ReasonToBeDeletedByClusterAutoscaler:
		return "the cluster autoscaler is removing it (taint ToBeDeletedByClusterAutoscaler)"
	case eligibility.ReasonNodeDeleting:
		return "the Node is being deleted"
	case eligibility.ReasonSpeakerNotAlive:
		s := c.speaker(n.Name)
		if s == nil {
			return "no Herald speaker runs there (no SpeakerStatus: the speaker never started on this node; check the DaemonSet's nodeSelector and tolerations)"
		}
		cond := apimeta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
		if cond == nil {
			return "its speaker has not reported Ready"
		}
		return fmt.Sprintf("its speaker is not running (SpeakerStatus %s: %s: %s)", s.Name, cond.Reason, cond.Message)
	case eligibility.ReasonNoLocalEndpoint:
		return "externalTrafficPolicy is Local and no ready endpoint of the Service runs on it"
	case eligibility.ReasonEndpointSettling:
		return "its first ready endpoint became ready less than the takeover delay ago"
	case eligibility.ReasonNoServingEndpoint:
		return "the Service has no ready endpoint anywhere"
	}
	return string(r)
}

// sessionsFor returns the node's BGP sessions that carry pool's routes,
// with their state from the node's SpeakerStatus.
func sessionsFor(c Cluster, m *config.Model, n *corev1.Node, pool string) []v1alpha1.BGPSessionStatus {
	ads := m.BGPAdvertisementsFor(pool, n.Labels)
	st := c.speaker(n.Name)
	var out []v1alpha1.BGPSessionStatus
	for _, p := range m.BGPPeersForNode(n.Labels) {
		to := false
		for _, a := range ads {
			to = to || a.AdvertisesTo(p.Name)
		}
		if !to {
			continue
		}
		addr := p.Address.String()
		if p.Unnumbered() {
			addr = "interface " + p.Interface
		}
		s := v1alpha1.BGPSessionStatus{Peer: p.Name, PeerAddress: addr, State: "unknown (not in the node's SpeakerStatus)"}
		if st != nil {
			for _, bs := range st.Status.BGPSessions {
				if bs.Peer == p.Name {
					s = bs
				}
			}
		}
		out = append(out, s)
	}
	return out
}

func sessionTexts(ss []v1alpha1.BGPSessionStatus) []string {
	var out []string
	for _, s := range ss {
		t := fmt.Sprintf("BGPPeer %s (%s) %s", s.Peer, s.PeerAddress, s.State)
		if s.BFDState != "" {
			t += ", BFD " + s.BFDState
		}
		if s.LastError != "" {
			t += ", last error: " + s.LastError
		}
		out = append(out, t)
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
