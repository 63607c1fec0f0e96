package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// Announcer is one node announcing an address, and how.
type Announcer struct {
	// Node is the node's name.
	Node string
	// How says by which protocol: "ARP", "NDP", or "BGP via <peer>".
	How string
}

// Probe is the outcome of a TCP connection from the client to one address and port.
type Probe struct {
	// Target is the address and port connected to.
	Target netip.AddrPort
	// Pod is the pod that answered; empty when the connection failed.
	Pod string
	// Err says why the connection failed.
	Err string
}

// ServiceRow is one line of the report: a Service, its addresses, who announces them
// and what the client reached.
type ServiceRow struct {
	// Service is namespace/name.
	Service string
	// Addresses are the Service's load-balancer or external addresses.
	Addresses []netip.Addr
	// Announcers maps each address (in Addresses order) to its announcers.
	Announcers map[netip.Addr][]Announcer
	// Probes are the TCP connections tried (none for a UDP-only Service).
	Probes []Probe
	// Note is a remark (why there is no address, why nothing announces it).
	Note string
}

// Announcements reads the SpeakerStatus objects and returns, for each address of
// service (namespace/name), the nodes announcing it at layer 2 (ARP for IPv4, NDP for
// IPv6), sorted by node. Only speakers whose Ready condition is True count. BGP
// announcements are per peer, not per address, in SpeakerStatus: bgpAddrs lists the
// Service's addresses announced by BGP, and every ready speaker with an Established
// session advertising at least one prefix is listed for each of them.
func Announcements(statuses []v1alpha1.SpeakerStatus, service string, bgpAddrs []netip.Addr) map[netip.Addr][]Announcer {
	out := map[netip.Addr][]Announcer{}
	for _, st := range statuses {
		if !speakerReady(st) {
			continue
		}
		for _, a := range st.Status.Layer2 {
			if a.Service != service {
				continue
			}
			addr, err := netip.ParseAddr(a.Address)
			if err != nil {
				continue
			}
			how := "ARP"
			if addr.Is6() {
				how = "NDP"
			}
			if len(a.Interfaces) > 0 {
				how += " on " + strings.Join(a.Interfaces, ",")
			}
			out[addr] = append(out[addr], Announcer{Node: st.Name, How: how})
		}
		for _, s := range st.Status.BGPSessions {
			if s.State != "Established" || s.PrefixesAdvertised == 0 {
				continue
			}
			for _, addr := range bgpAddrs {
				out[addr] = append(out[addr], Announcer{Node: st.Name, How: "BGP via " + s.Peer})
			}
		}
	}
	for addr := range out {
		slices.SortFunc(out[addr], func(a, b Announcer) int {
			if c := strings.Compare(a.Node, b.Node); c != 0 {
				return c
			}
			return strings.Compare(a.How, b.How)
		})
	}
	return out
}

func speakerReady(st v1alpha1.SpeakerStatus) bool {
	for _, c := range st.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// FormatReport renders rows as the lab's report: a table with one line per Service
// address, then the notes of the Services that have addresses (a Service without one
// shows its note in the table).
func FormatReport(rows []ServiceRow) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tADDRESS\tANNOUNCED BY\tCLIENT TCP CONNECTION")
	for _, r := range rows {
		if len(r.Addresses) == 0 {
			fmt.Fprintf(w, "%s\t<none>\t-\t%s\n", r.Service, orDash(r.Note))
			continue
		}
		for i, addr := range r.Addresses {
			name := r.Service
			if i > 0 {
				name = ""
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, addr, announcers(r.Announcers[addr]), probes(r.Probes, addr))
		}
	}
	w.Flush()
	notes := false
	for _, r := range rows {
		if r.Note == "" || len(r.Addresses) == 0 {
			continue
		}
		if !notes {
			b.WriteString("\nNotes:\n")
			notes = true
		}
		fmt.Fprintf(&b, "  %s: %s\n", r.Service, r.Note)
	}
	return b.String()
}

func announcers(as []Announcer) string {
	if len(as) == 0 {
		return "nobody"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.Node + " (" + a.How + ")"
	}
	return strings.Join(parts, ", ")
}

func probes(ps []Probe, addr netip.Addr) string {
	var parts []string
	for _, p := range ps {
		if p.Target.Addr() != addr {
			continue
		}
		if p.Pod != "" {
			parts = append(parts, fmt.Sprintf("port %d: ok, pod %s", p.Target.Port(), p.Pod))
		} else {
			parts = append(parts, fmt.Sprintf("port %d: FAILED (%s)", p.Target.Port(), p.Err))
		}
	}
	if len(parts) == 0 {
		return "not tried (no TCP port)"
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
