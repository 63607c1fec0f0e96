package speakerlab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// Metric returns the value of the sample of n's speaker named name whose
// labels contain every one of labelMatch (for example `protocol="arp"`),
// summed over matching samples.
func (l *Lab) Metric(ctx context.Context, n *Node, name string, labelMatch ...string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+MetricsAddr+"/metrics", nil)
	resp, err := n.Host.HTTPClient(2 * time.Second).Do(req)
	if err != nil {
		return 0, fmt.Errorf("speakerlab: metrics of %s: %w", n.Name, err)
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		ok := true
		for _, m := range labelMatch {
			if !strings.Contains(rest, m) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("speakerlab: metric %s{%s} not found on %s", name, strings.Join(labelMatch, ","), n.Name)
	}
	return sum, nil
}

var macPattern = regexp.MustCompile(`(?i)\b([0-9a-f]{2}(?::[0-9a-f]{2}){5})\b`)

// Arping asks for addr from the client with arping (Debian's arping, two
// requests 200 ms apart, waiting at most a second) and
// returns the distinct MACs that answered, sorted; none when nobody did.
func (l *Lab) Arping(ctx context.Context, addr netip.Addr) ([]string, error) {
	// arping exits 1 when nobody answers; a failure to run shows as output
	// without its statistics line.
	out, err := l.Client.Run(ctx, "arping", "-c", "2", "-W", "0.2", "-w", "1", "-i", l.ClientLink.Name, addr.String())
	if err != nil && !strings.Contains(out, "packets transmitted") {
		return nil, err
	}
	var macs []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, " from ") {
			continue
		}
		if m := macPattern.FindString(line); m != "" {
			macs = append(macs, strings.ToLower(m))
		}
	}
	slices.Sort(macs)
	return slices.Compact(macs), nil
}

// Ndisc asks for addr from the client with ndisc6 and returns the distinct
// MACs that answered, sorted; none when nobody did.
func (l *Lab) Ndisc(ctx context.Context, addr netip.Addr) ([]string, error) {
	out, _ := l.Client.Run(ctx, "ndisc6", "-m", "-n", "-r", "2", "-w", "500", addr.String(), l.ClientLink.Name)
	var macs []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "Target link-layer address") {
			continue
		}
		if m := macPattern.FindString(line); m != "" {
			macs = append(macs, strings.ToLower(m))
		}
	}
	slices.Sort(macs)
	return slices.Compact(macs), nil
}

// Answering returns the nodes that answer ARP (IPv4) or NDP (IPv6) for
// addr from the client, by name, sorted. A MAC of no node is returned as is.
func (l *Lab) Answering(ctx context.Context, addr netip.Addr) ([]string, error) {
	var macs []string
	var err error
	if addr.Is4() {
		macs, err = l.Arping(ctx, addr)
	} else {
		macs, err = l.Ndisc(ctx, addr)
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range macs {
		hw, _ := net.ParseMAC(m)
		if n := l.NodeByMAC(hw); n != nil {
			out = append(out, n.Name)
		} else {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ConnectVIP opens a TCP connection from the client to addr:ServicePort
// and returns the name of the node that answered.
func (l *Lab) ConnectVIP(ctx context.Context, addr netip.Addr) (string, error) {
	s, err := l.Client.Connect(ctx, netip.AddrPortFrom(addr, ServicePort))
	return strings.TrimSpace(s), err
}

// StatusAnnouncers returns, from the SpeakerStatus records, the nodes that
// list addr for service (namespace/name), sorted, and whether each record
// is Ready.
func (l *Lab) StatusAnnouncers(ctx context.Context, addr netip.Addr, service string) ([]string, error) {
	list, err := l.Herald.HeraldV1alpha1().SpeakerStatuses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("speakerlab: list SpeakerStatuses: %w", err)
	}
	var out []string
	for _, s := range list.Items {
		for _, a := range s.Status.Layer2 {
			if a.Address == addr.String() && a.Service == service {
				out = append(out, s.Name)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// StatusReady returns whether node's SpeakerStatus is Ready, and its reason.
func (l *Lab) StatusReady(ctx context.Context, node string) (bool, string, error) {
	s, err := l.Herald.HeraldV1alpha1().SpeakerStatuses().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return false, "", err
	}
	c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil {
		return false, "", nil
	}
	return c.Status == metav1.ConditionTrue, c.Reason, nil
}

// ServiceEvents returns the reasons and messages of the events on a Service.
func (l *Lab) ServiceEvents(ctx context.Context, service string) ([]string, error) {
	list, err := l.Kube.CoreV1().Events(Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + service})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out, nil
}
