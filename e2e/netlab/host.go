package netlab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// Host is a network namespace of the lab. Processes and one-shot commands run in it
// through `ip netns exec`; Go code runs in it through Do, which is how DialContext,
// Listen and HTTPClient create their sockets there.
type Host struct {
	lab  *Lab
	name string
	ns   string

	mu    sync.Mutex
	links []*Link

	nsMu   sync.Mutex
	nsFile nsHandle
}

// Name returns the host's name within the lab.
func (h *Host) Name() string { return h.name }

// Netns returns the host's network namespace name, for `ip netns exec`.
func (h *Host) Netns() string { return h.ns }

// Lab returns the lab the host belongs to.
func (h *Host) Lab() *Lab { return h.lab }

// Links returns the host's links in creation order.
func (h *Host) Links() []*Link {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.links)
}

// Link returns the host's link whose interface is named ifname, or nil.
func (h *Host) Link(ifname string) *Link {
	for _, l := range h.Links() {
		if l.Name == ifname {
			return l
		}
	}
	return nil
}

// Addrs returns the addresses of all the host's links (without prefix lengths), IPv4
// first.
func (h *Host) Addrs() []netip.Addr {
	var v4, v6 []netip.Addr
	for _, l := range h.Links() {
		for _, p := range l.Addrs {
			if p.Addr().Is4() {
				v4 = append(v4, p.Addr())
			} else {
				v6 = append(v6, p.Addr())
			}
		}
	}
	return append(v4, v6...)
}

// Addr4 returns the host's first IPv4 address, or the zero Addr.
func (h *Host) Addr4() netip.Addr {
	for _, a := range h.Addrs() {
		if a.Is4() {
			return a
		}
	}
	return netip.Addr{}
}

// Addr6 returns the host's first IPv6 address, or the zero Addr.
func (h *Host) Addr6() netip.Addr {
	for _, a := range h.Addrs() {
		if a.Is6() {
			return a
		}
	}
	return netip.Addr{}
}

// linkFor returns the link whose subnet holds a, else the host's first link.
func (h *Host) linkFor(a netip.Addr) (*Link, error) {
	links := h.Links()
	for _, l := range links {
		for _, p := range l.Addrs {
			if p.Masked().Contains(a) {
				return l, nil
			}
		}
	}
	if len(links) == 0 {
		return nil, fmt.Errorf("netlab: host %s has no link", h.name)
	}
	return links[0], nil
}

// Command returns an exec.Cmd that runs argv in the host's namespace.
func (h *Host) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns}, argv...)...)
}

// Run runs argv in the host's namespace and returns its combined output. The error
// names the command and holds the output.
func (h *Host) Run(ctx context.Context, argv ...string) (string, error) {
	var cmd *exec.Cmd
	if len(argv) > 0 && argv[0] == "ip" {
		// ip -n NS is cheaper than ip netns exec NS ip: no mount namespace.
		cmd = exec.CommandContext(ctx, "ip", append([]string{"-n", h.ns}, argv[1:]...)...)
	} else {
		cmd = h.Command(ctx, argv...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netlab: %s: %s: %w: %s", h.name, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// MustRun runs argv like Run and fails the test on error.
func (h *Host) MustRun(argv ...string) string {
	h.lab.t.Helper()
	out, err := h.Run(h.lab.t.Context(), argv...)
	if err != nil {
		h.lab.t.Fatalf("%v", err)
	}
	return out
}

// Sysctl sets sysctls (name=value) in the host's namespace.
func (h *Host) Sysctl(settings ...string) {
	h.lab.t.Helper()
	h.MustRun(append([]string{"sysctl", "-q", "-w"}, settings...)...)
}

// AddRoute adds a route to dst through the gateway via (on-link when via is the zero
// Addr, then dev names the interface).
func (h *Host) AddRoute(dst netip.Prefix, via netip.Addr, dev string) {
	h.lab.t.Helper()
	args := []string{"ip", "route", "replace", dst.String()}
	if dst.Addr().Is6() {
		args = []string{"ip", "-6", "route", "replace", dst.String()}
	}
	if via.IsValid() {
		args = append(args, "via", via.String())
	}
	if dev != "" {
		args = append(args, "dev", dev)
	}
	h.MustRun(args...)
}

// AddAddr adds an address to the interface ifname (without duplicate address detection).
func (h *Host) AddAddr(ifname string, p netip.Prefix) {
	h.lab.t.Helper()
	args := []string{"ip", "addr", "add", p.String(), "dev", ifname}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	h.MustRun(args...)
}

// DelAddr removes an address from the interface ifname.
func (h *Host) DelAddr(ifname string, p netip.Prefix) {
	h.lab.t.Helper()
	h.MustRun("ip", "addr", "del", p.String(), "dev", ifname)
}

// DialContext connects to address from inside the host's namespace (the socket is made
// there; the connection then works from any goroutine).
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var conn net.Conn
	err := h.Do(func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, address)
		return err
	})
	return conn, err
}

// Listen listens on address inside the host's namespace.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// HTTPClient returns an HTTP client whose connections start in the host's namespace.
// It keeps no idle connections, so each request is a fresh connection.
func (h *Host) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:       h.DialContext,
			DisableKeepAlives: true,
		},
	}
}
