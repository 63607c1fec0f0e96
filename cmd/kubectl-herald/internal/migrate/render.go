package migrate

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/herald-dev/herald/config"
)

// Write prints the plan for people: the resources to create, every
// Service with its address now and after, what is dropped and why, the
// notes, and the problems that stop --apply.
func (p *Plan) Write(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "Migration plan from %s to Herald\n\n", p.Source)
	fmt.Fprintf(b, "Herald resources to create (%d):\n", len(p.IPPools)+len(p.L2Advertisements)+len(p.BGPAdvertisements)+len(p.BGPPeers))
	for _, o := range p.IPPools {
		fmt.Fprintf(b, "  IPPool %s: %s\n", o.Name, strings.Join(o.Spec.Addresses, ", "))
	}
	for _, o := range p.L2Advertisements {
		fmt.Fprintf(b, "  L2Advertisement %s: pools %s\n", o.Name, poolsText(o.Spec.IPPools, o.Spec.IPPoolSelector != nil))
	}
	for _, o := range p.BGPAdvertisements {
		fmt.Fprintf(b, "  BGPAdvertisement %s: pools %s\n", o.Name, poolsText(o.Spec.IPPools, o.Spec.IPPoolSelector != nil))
	}
	for _, o := range p.BGPPeers {
		fmt.Fprintf(b, "  BGPPeer %s: %s AS %d (my AS %d)\n", o.Name, o.Spec.PeerAddress, o.Spec.PeerASN, o.Spec.MyASN)
	}
	fmt.Fprintf(b, "\nServices (%d):\n", len(p.Services))
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVICE\tADDRESS NOW\tADDRESS AFTER\tPOOL\tANNOTATIONS")
	for _, s := range p.Services {
		after := config.JoinAddrs(s.After)
		if len(s.Now) == 0 && len(s.Problems) == 0 {
			after = "pending: Herald allocates one"
		}
		if len(s.Problems) > 0 {
			after = "AT RISK (see problems)"
		}
		fmt.Fprintf(tw, "  %s/%s\t%s\t%s\t%s\t%s\n", s.Namespace, s.Name, orNone(config.JoinAddrs(s.Now)), orNone(after), orNone(strings.Join(nonEmpty(s.Pools), ", ")), orNone(annotationsText(s.Annotations)))
	}
	tw.Flush()
	fmt.Fprintf(b, "\nSettings not carried (%d):\n", len(p.Dropped))
	for _, d := range p.Dropped {
		v := ""
		if d.Value != "" {
			v = " = " + d.Value
		}
		fmt.Fprintf(b, "  %s %s%s: %s\n", d.Object, d.Field, v, d.Reason)
	}
	if len(p.Notes) > 0 {
		fmt.Fprintf(b, "\nNotes (%d):\n", len(p.Notes))
		for _, n := range p.Notes {
			fmt.Fprintf(b, "  %s\n", n)
		}
	}
	problems := slices.Clone(p.Problems)
	for _, s := range p.Services {
		for _, pr := range s.Problems {
			problems = append(problems, fmt.Sprintf("Service %s/%s: %s", s.Namespace, s.Name, pr))
		}
	}
	fmt.Fprintf(b, "\nProblems (%d)", len(problems))
	if len(problems) > 0 {
		fmt.Fprintf(b, ": nothing will be applied until they are fixed")
	}
	fmt.Fprintln(b, ":")
	for _, pr := range problems {
		fmt.Fprintf(b, "  %s\n", pr)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func poolsText(names []string, selector bool) string {
	switch {
	case selector:
		return "selected by label"
	case len(names) == 0:
		return "all"
	}
	return strings.Join(names, ", ")
}

func annotationsText(a map[string]string) string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		s = append(s, k+"="+a[k])
	}
	return strings.Join(s, " ")
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func nonEmpty(s []string) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		out = append(out, orNone(x))
	}
	return out
}
