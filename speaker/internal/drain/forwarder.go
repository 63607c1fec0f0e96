package drain

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/herald-dev/herald/speaker/internal/decide"
)

// Table is the name of the nftables table (family inet) the Forwarder owns.
const Table = "herald-drain"

// rulePriority is the priority of the policy routing rules (before the main
// table's, 32766).
const rulePriority = 9818

// ErrNotPermitted is returned (wrapped) when the process may not program the
// node's netfilter or routing: it lacks CAP_NET_ADMIN.
var ErrNotPermitted = errors.New("drain: not permitted (needs CAP_NET_ADMIN)")

// Config configures a Forwarder.
type Config struct {
	// Mark is the packet and connection mark bit (or bits) of drained
	// flows; it must not be used by other software on the node.
	Mark uint32
	// RouteTable is the routing table of the drain routes.
	RouteTable int
}

// Forwarder programs the drains of this node. Its methods are safe for
// concurrent use.
type Forwarder struct {
	cfg Config

	mu      sync.Mutex
	applied []decide.Drain // the last drains Set programmed; nil after Reset
	ok      bool           // the last Set succeeded
	at      time.Time      // when it did
}

// resync is how long Set trusts that what it programmed is still there:
// after it, Set programs the same drains again (someone may have flushed
// the table or the routes).
const resync = 10 * time.Second

// New returns a Forwarder; it programs nothing until Reset or Set.
func New(cfg Config) (*Forwarder, error) {
	if cfg.Mark == 0 || cfg.RouteTable <= 0 || cfg.RouteTable >= unix.RT_TABLE_COMPAT && cfg.RouteTable <= unix.RT_TABLE_LOCAL {
		return nil, fmt.Errorf("drain: mark %#x and routing table %d: want a non-zero mark and a table other than 0, 252 to 255", cfg.Mark, cfg.RouteTable)
	}
	return &Forwarder{cfg: cfg}, nil
}

// Reset removes what a previous run left (the table, the routes, the
// rules). At start-up it also tells whether the process may program the
// node: ErrNotPermitted when not.
func (f *Forwarder) Reset() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied, f.ok = nil, false
	return f.removeAll()
}

// Close removes everything the Forwarder programmed.
func (f *Forwarder) Close() error { return f.Reset() }

// Set programs drains (sorted by address, as decide.PlanDrains returns
// them): the table is rebuilt in one transaction and the routes and rules
// synced when they changed, when the last Set failed, or when the last
// success is older than resync. With no drains nothing is left on the node.
func (f *Forwarder) Set(drains []decide.Drain) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ok && slices.Equal(f.applied, drains) && time.Since(f.at) < resync {
		return nil
	}
	f.ok = false
	if len(drains) == 0 {
		if err := f.removeAll(); err != nil {
			return err
		}
		f.applied, f.ok, f.at = nil, true, time.Now()
		return nil
	}
	// The routes and rules first, then the marks: a packet marked before
	// its route exists would skip kube-proxy and go nowhere useful.
	if err := f.syncRoutes(drains); err != nil {
		return err
	}
	if err := f.program(drains); err != nil {
		return err
	}
	f.applied, f.ok, f.at = slices.Clone(drains), true, time.Now()
	return nil
}

// removeAll deletes the table, the rules and the routes.
func (f *Forwarder) removeAll() error {
	var errs []error
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("drain: netlink: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return notPermitted("list nftables tables", err)
	}
	for _, t := range tables {
		if t.Name == Table {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				errs = append(errs, notPermitted("delete nftables table "+Table, err))
			}
		}
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if err := f.syncRule(family, false); err != nil {
			errs = append(errs, err)
		}
		if err := f.syncFamilyRoutes(family, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncRoutes makes the routing table hold exactly a host route per drain
// via its node, and the rules send marked packets there.
func (f *Forwarder) syncRoutes(drains []decide.Drain) error {
	var errs []error
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		var mine []decide.Drain
		for _, d := range drains {
			if d.Addr.Is4() == (family == netlink.FAMILY_V4) {
				mine = append(mine, d)
			}
		}
		if err := f.syncFamilyRoutes(family, mine); err != nil {
			errs = append(errs, err)
		}
		if err := f.syncRule(family, len(mine) > 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncFamilyRoutes makes the routing table's routes of family those of drains.
func (f *Forwarder) syncFamilyRoutes(family int, drains []decide.Drain) error {
	have, err := netlink.RouteListFiltered(family, &netlink.Route{Table: f.cfg.RouteTable}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return notPermitted("list routes", err)
	}
	want := map[netip.Addr]netip.Addr{}
	for _, d := range drains {
		want[d.Addr] = d.Via
	}
	var errs []error
	for _, r := range have {
		if r.Dst != nil && r.Gw != nil {
			dst, _ := netip.AddrFromSlice(r.Dst.IP)
			gw, _ := netip.AddrFromSlice(r.Gw)
			ones, bits := r.Dst.Mask.Size()
			if via, ok := want[dst.Unmap()]; ok && via == gw.Unmap() && ones == bits {
				delete(want, dst.Unmap())
				continue
			}
		}
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, notPermitted("delete route", err))
		}
	}
	for _, d := range drains {
		if _, missing := want[d.Addr]; !missing {
			continue
		}
		bits := d.Addr.BitLen()
		r := &netlink.Route{Table: f.cfg.RouteTable, Dst: &net.IPNet{IP: d.Addr.AsSlice(), Mask: net.CIDRMask(bits, bits)}, Gw: d.Via.AsSlice()}
		if err := netlink.RouteReplace(r); err != nil {
			errs = append(errs, notPermitted(fmt.Sprintf("route %s via %s in table %d", d.Addr, d.Via, f.cfg.RouteTable), err))
		}
	}
	return errors.Join(errs...)
}

// syncRule adds (present) or removes the rule of family that looks marked
// packets up in the routing table.
func (f *Forwarder) syncRule(family int, present bool) error {
	rules, err := netlink.RuleListFiltered(family, &netlink.Rule{Priority: rulePriority}, netlink.RT_FILTER_PRIORITY)
	if err != nil {
		return notPermitted("list rules", err)
	}
	found := false
	var errs []error
	for _, r := range rules {
		if r.Priority != rulePriority {
			continue
		}
		if present && !found && r.Table == f.cfg.RouteTable && r.Mark == f.cfg.Mark && r.Mask != nil && *r.Mask == f.cfg.Mark {
			found = true
			continue
		}
		if err := netlink.RuleDel(&r); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, notPermitted("delete rule", err))
		}
	}
	if present && !found {
		r := netlink.NewRule()
		r.Family, r.Priority, r.Table, r.Mark = family, rulePriority, f.cfg.RouteTable, f.cfg.Mark
		mask := f.cfg.Mark
		r.Mask = &mask
		if err := netlink.RuleAdd(r); err != nil {
			errs = append(errs, notPermitted("add rule", err))
		}
	}
	return errors.Join(errs...)
}

// notPermitted wraps err, with ErrNotPermitted when it is EPERM.
func notPermitted(op string, err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w: %s: %w", ErrNotPermitted, op, err)
	}
	return fmt.Errorf("drain: %s: %w", op, err)
}
