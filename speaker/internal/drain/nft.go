package drain

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/herald-dev/herald/speaker/internal/decide"
)

// Chain priorities: marking after connection tracking, as iptables' mangle
// table; the identity NAT just before kube-proxy's (iptables' nat table,
// -100), so that its binding is the first; redirects dropped as mangle
// OUTPUT.
const (
	markPriority     = nftables.ChainPriority(-150)
	natPriority      = nftables.ChainPriority(-110)
	redirectPriority = nftables.ChainPriority(-150)
)

// ICMP redirect types.
const (
	icmpRedirect   = 5
	icmpv6Redirect = 137
)

// program replaces the table with one for drains, in one transaction.
func (f *Forwarder) program(drains []decide.Drain) error {
	c, err := nftables.New()
	if err != nil {
		return notPermitted("netlink", err)
	}
	t := &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
	// Adding then deleting an existing or new table, in the same batch,
	// starts from an empty one.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	mark := c.AddChain(&nftables.Chain{Name: "mark", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(markPriority), Policy: &accept})
	nat := c.AddChain(&nftables.Chain{Name: "nat", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(natPriority), Policy: &accept})
	redirects := c.AddChain(&nftables.Chain{Name: "redirects", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityRef(redirectPriority), Policy: &accept})

	for _, o := range drainedTimeouts(t) {
		c.AddObj(o)
	}
	for _, d := range drains {
		c.AddRule(&nftables.Rule{Table: t, Chain: mark, Exprs: markStale(d.Addr, f.cfg.Mark)})
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: mark, Exprs: restoreMark(f.cfg.Mark)})
	for _, d := range drains {
		c.AddRule(&nftables.Rule{Table: t, Chain: nat, Exprs: identityNAT(d.Addr, f.cfg.Mark)})
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: redirects, Exprs: dropRedirects(unix.IPPROTO_ICMP, icmpRedirect)})
	c.AddRule(&nftables.Rule{Table: t, Chain: redirects, Exprs: dropRedirects(unix.IPPROTO_ICMPV6, icmpv6Redirect)})
	if err := c.Flush(); err != nil {
		return notPermitted("program nftables table "+Table, err)
	}
	return nil
}

// matchDaddr loads the destination address into register 1 and compares it
// with a (after checking the family).
func matchDaddr(a netip.Addr) []expr.Any {
	proto, off, n := byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
	if a.Is6() {
		proto, off, n = unix.NFPROTO_IPV6, 24, 16
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
	}
}

// The connection tracking timeouts of drained connections, one object per
// family (`ct timeout` needs the layer-3 protocol in an inet table).
//
// This node sees only the client's half of a drained connection: the
// previous node answers the client directly. So once the client closes,
// the entry sits in FIN_WAIT (120 s by default) or CLOSE_WAIT, LAST_ACK,
// TIME_WAIT, never seeing the end. A new connection from the same client
// address and port meanwhile (a client whose server closed first reuses
// its ports at once) had its SYN taken for that entry, ignored as a state
// change, given the drain's mark and forwarded to the previous node, which
// no longer serves the address: measured, one connection in 50,000 in a
// rollout run, its SYN seen on node2's eth0 going back out to node1
// (docs/figures.md). With these timeouts a closing drained entry lives for
// a second, and an established one for drainedEstablished: a drained
// connection idle longer is picked up and marked again by its next segment
// while the drain lasts.
const (
	drainedTimeout4    = "drained-ip"
	drainedTimeout6    = "drained-ip6"
	drainedClosing     = 1  // seconds
	drainedEstablished = 60 // seconds
)

// drainedTimeouts returns the timeout objects of drained connections.
func drainedTimeouts(t *nftables.Table) []*nftables.NamedObj {
	// The whole policy, every state named: google/nftables fills the states
	// a policy leaves out from (and into) its package-level defaults.
	policy := expr.CtStatePolicyTimeout{
		expr.CtStateTCPSYNSENT: 120, expr.CtStateTCPSYNRECV: 60, expr.CtStateTCPSYNSENT2: 120,
		expr.CtStateTCPESTABLISHED: drainedEstablished, expr.CtStateTCPRETRANS: drainedEstablished, expr.CtStateTCPUNACK: drainedEstablished,
		expr.CtStateTCPFINWAIT: drainedClosing, expr.CtStateTCPCLOSEWAIT: drainedClosing, expr.CtStateTCPLASTACK: drainedClosing,
		expr.CtStateTCPTIMEWAIT: drainedClosing, expr.CtStateTCPCLOSE: drainedClosing,
	}
	return []*nftables.NamedObj{
		{Table: t, Name: drainedTimeout4, Type: nftables.ObjTypeCtTimeout,
			Obj: &expr.CtTimeout{L3Proto: unix.NFPROTO_IPV4, L4Proto: unix.IPPROTO_TCP, Policy: policy}},
		{Table: t, Name: drainedTimeout6, Type: nftables.ObjTypeCtTimeout,
			Obj: &expr.CtTimeout{L3Proto: unix.NFPROTO_IPV6, L4Proto: unix.IPPROTO_TCP, Policy: policy}},
	}
}

// markStale: `ip daddr A tcp flags & (fin|syn|rst|ack) != syn ct state new
// ct mark set ct mark | M ct timeout set "drained-ip"`: a TCP connection to
// A that begins here without a SYN, tracked with the drained timeouts.
func markStale(a netip.Addr, m uint32) []expr.Any {
	timeout := drainedTimeout4
	if a.Is6() {
		timeout = drainedTimeout6
	}
	e := matchDaddr(a)
	return append(e,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		// TCP flags, byte 13 of the header: FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x17}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0x02}},
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^m), Xor: binaryutil.NativeEndian.PutUint32(m)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
		&expr.Objref{Type: int(nftables.ObjTypeCtTimeout), Name: timeout},
	)
}

// restoreMark: `ct mark & M != 0 meta mark set meta mark | M`: every packet
// of a drained connection carries the mark the routing rule matches.
func restoreMark(m uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(m), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^m), Xor: binaryutil.NativeEndian.PutUint32(m)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
	}
}

// identityNAT: `meta mark & M != 0 ip daddr A dnat to A`: the drained
// connection's first NAT binding is the identity, so kube-proxy's DNAT (a
// later NAT chain of the same hook) is skipped.
func identityNAT(a netip.Addr, m uint32) []expr.Any {
	family := uint32(unix.NFPROTO_IPV4)
	if a.Is6() {
		family = unix.NFPROTO_IPV6
	}
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(m), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
	e = append(e, matchDaddr(a)...)
	return append(e,
		&expr.Immediate{Register: 1, Data: a.AsSlice()},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: family, RegAddrMin: 1, RegAddrMax: 1},
	)
}

// dropRedirects: `meta l4proto P icmp type T drop`.
func dropRedirects(proto, typ byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}
