package explain

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// Status is the whole installation on one screen: pools with their usage,
// speakers with their state, BGP sessions, and every problem condition of
// Herald's resources and of the Services.
func Status(c Cluster, services []*corev1.Service) string {
	w := &writer{}
	tw := tabwriter.NewWriter(&w.b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "POOL\tADDRESSES\tAUTO\tIPv4 USED/TOTAL\tIPv6 USED/TOTAL\tREADY\n")
	pools := slices.Clone(c.Pools)
	slices.SortFunc(pools, func(a, b *v1alpha1.IPPool) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range pools {
		auto := "yes"
		if p.Spec.AutoAssign != nil && !*p.Spec.AutoAssign {
			auto = "no"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, strings.Join(p.Spec.Addresses, ","), auto, countsText(p.Status.IPv4), countsText(p.Status.IPv6), readyText(p.Status.Conditions))
	}
	if len(pools) == 0 {
		fmt.Fprintf(tw, "(no IPPool)\n")
	}
	fmt.Fprintf(tw, "\nSPEAKER\tREADY\tMEMBERS\tLAYER2 ADDRESSES\tBGP UP/SESSIONS\n")
	speakers := slices.Clone(c.Speakers)
	slices.SortFunc(speakers, func(a, b *v1alpha1.SpeakerStatus) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range speakers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d/%d\n", s.Name, readyText(s.Status.Conditions), s.Status.Members, s.Status.Layer2Addresses, s.Status.BGPSessionsEstablished, s.Status.BGPSessionCount)
	}
	if len(speakers) == 0 {
		fmt.Fprintf(tw, "(no SpeakerStatus: no speaker has run)\n")
	}
	var sessions []string
	for _, s := range speakers {
		for _, b := range s.Status.BGPSessions {
			line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\n", s.Name, b.Peer, b.PeerAddress, b.State, orText(b.BFDState, "-"))
			if b.LastError != "" {
				line = strings.TrimSuffix(line, "\n") + "\t" + b.LastError + "\n"
			}
			sessions = append(sessions, line)
		}
	}
	if len(sessions) > 0 {
		fmt.Fprintf(tw, "\nNODE\tPEER\tADDRESS\tSTATE\tBFD\tLAST ERROR\n")
		for _, l := range sessions {
			fmt.Fprint(tw, l)
		}
	}
	tw.Flush()

	problems := resourceProblems(c)
	pending := 0
	for _, svc := range services {
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && len(config.LoadBalancerAddresses(svc)) == 0 {
			pending++
		}
		for _, t := range []string{config.ConditionAddressAllocated, config.ConditionExternalIPsAccepted} {
			if cond := apimeta.FindStatusCondition(svc.Status.Conditions, t); cond != nil && cond.Status == metav1.ConditionFalse {
				problems = append(problems, fmt.Sprintf("Service %s/%s: %s: %s", svc.Namespace, svc.Name, cond.Reason, cond.Message))
			}
		}
	}
	w.blank()
	w.line(0, "Services of type LoadBalancer without an address: %d.", pending)
	w.line(0, "Problems (%d):", len(problems))
	for _, p := range problems {
		w.line(1, "%s", p)
	}
	unreadable(w, c)
	return w.String()
}

func countsText(c *v1alpha1.AddressCounts) string {
	if c == nil {
		return "-"
	}
	return c.Used + "/" + c.Total
}

func readyText(conds []metav1.Condition) string {
	c := apimeta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	switch {
	case c == nil:
		return "unknown"
	case c.Status == metav1.ConditionTrue:
		return "True"
	}
	return "False (" + c.Reason + ")"
}

// problemConditions are the condition types that report a problem when True.
var problemConditions = []string{v1alpha1.ConditionOverlapping, v1alpha1.ConditionAddressesOutsidePool, v1alpha1.ConditionDeletionBlocked}

// resourceProblems lists every problem condition of Herald's resources.
func resourceProblems(c Cluster) []string {
	var out []string
	add := func(kind, name string, conds []metav1.Condition) {
		for _, cond := range conds {
			bad := (cond.Type == v1alpha1.ConditionReady && cond.Status == metav1.ConditionFalse) ||
				(slices.Contains(problemConditions, cond.Type) && cond.Status == metav1.ConditionTrue)
			if bad {
				out = append(out, fmt.Sprintf("%s %s: %s %s: %s", kind, name, cond.Type, cond.Reason, cond.Message))
			}
		}
	}
	for _, p := range c.Pools {
		add("IPPool", p.Name, p.Status.Conditions)
	}
	for _, a := range c.L2Advertisements {
		add("L2Advertisement", a.Name, a.Status.Conditions)
	}
	for _, a := range c.BGPAdvertisements {
		add("BGPAdvertisement", a.Name, a.Status.Conditions)
	}
	for _, p := range c.BGPPeers {
		add("BGPPeer", p.Name, p.Status.Conditions)
	}
	for _, s := range c.Speakers {
		add("SpeakerStatus", s.Name, s.Status.Conditions)
		for _, b := range s.Status.BGPSessions {
			if b.State != "Established" {
				out = append(out, fmt.Sprintf("BGP session %s -> %s (%s): %s%s", s.Name, b.Peer, b.PeerAddress, b.State, prefixed(", last error: ", b.LastError)))
			}
		}
	}
	slices.Sort(out)
	return out
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
