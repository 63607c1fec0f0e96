package bgp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// ErrClosed is returned by Set after Close.
var ErrClosed = errors.New("bgp: speaker closed")

// ErrBadOptions is wrapped by New's error for unusable Options.
var ErrBadOptions = errors.New("bgp: bad options")

// DefaultASN is GoBGP's global AS number when Options.ASN is 0. Every
// session speaks with its own Peer.MyASN, so it only fills a required field.
const DefaultASN = 4294967294

// pathBatch is how many paths go into one GoBGP AddPath or DeletePath call.
const pathBatch = 1024

// statusPollInterval is how often BFD states are compared for Changes.
const statusPollInterval = 500 * time.Millisecond

// Options configure a Speaker.
type Options struct {
	// RouterID is the BGP identifier, an IPv4 address unique among the
	// routers' peers (usually the node's IPv4 address; see RouterIDFor).
	RouterID netip.Addr
	// ASN is GoBGP's global AS number; 0 means DefaultASN.
	ASN uint32
	// ListenPort is the TCP port the speaker accepts sessions on, for
	// passive peers; 0 means it does not listen at all.
	ListenPort uint16
	// Logger receives GoBGP's log records (tagged component=gobgp); nil
	// discards them.
	Logger *slog.Logger
}

// Speaker runs an embedded GoBGP server and keeps it at the desired state
// given to Set. Its methods are safe for concurrent use.
type Speaker struct {
	srv     *server.BgpServer
	opts    Options
	nextHop nextHopFunc
	// neighbor finds an unnumbered peer's router; advertise sends router
	// advertisements on an unnumbered peer's interface until its context is
	// done.
	neighbor  neighborFunc
	advertise func(ctx context.Context, ifname string)
	ctx       context.Context // done when the speaker closes
	cancel    context.CancelFunc
	done      chan struct{}
	changes   chan struct{}

	setMu   sync.Mutex // serialises Set and Close
	applied applied    // guarded by setMu
	// assignmentDirty says the export policy assignment may not list
	// exactly applied.groups. Guarded by setMu.
	assignmentDirty bool
	closed          bool
	// last is the Desired of the last Set, and resolved what its
	// unnumbered peers' interfaces resolved to (address or error text):
	// checkNeighbors applies last again when that changes. advertisers
	// stop the router advertisements of each unnumbered interface. Guarded
	// by setMu.
	last        Desired
	resolved    map[string]string
	advertisers map[string]context.CancelFunc

	mu           sync.Mutex // guards what follows
	records      map[string]*peerRecord
	bfdListenErr string
	stopping     bool
}

// peerRecord is the speaker's own view of a desired peer.
type peerRecord struct {
	status        PeerStatus
	port          uint16
	password      bool
	bfd           bool
	configured    bool // the GoBGP neighbour exists
	sessionErr    string
	routesErr     string
	lastBFDFailed time.Time
}

// New starts a GoBGP server (not listening unless opts.ListenPort is set)
// with no peers. Close stops it.
func New(opts Options) (*Speaker, error) {
	if !opts.RouterID.Is4() {
		return nil, fmt.Errorf("%w: router id %v is not an IPv4 address", ErrBadOptions, opts.RouterID)
	}
	if opts.ASN == 0 {
		opts.ASN = DefaultASN
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Speaker{
		opts:        opts,
		nextHop:     kernelNextHop,
		neighbor:    kernelNeighbor,
		advertise:   advertiseRouter,
		advertisers: map[string]context.CancelFunc{},
		done:        make(chan struct{}),
		changes:     make(chan struct{}, 1),
		applied:     newApplied(),
		records:     map[string]*peerRecord{},
	}
	s.srv = server.NewBgpServer(server.LoggerOption(slog.New(newLogHandler(logger.Handler(), s)), nil))
	go s.srv.Serve()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	listen := int32(-1)
	if opts.ListenPort != 0 {
		listen = int32(opts.ListenPort)
	}
	err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: opts.ASN, RouterId: opts.RouterID.String(), ListenPort: listen,
	}})
	if err == nil {
		err = s.setAssignment(ctx, nil)
	}
	if err == nil {
		err = s.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.onPeerEvent}, server.WatchPeer())
	}
	if err != nil {
		cancel()
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: start GoBGP: %w", err)
	}
	s.ctx = ctx
	go s.pollBFD(ctx)
	return s, nil
}

// Changes returns a channel that receives a value, coalesced, whenever a
// peer's status changes (state, errors, BFD state, configuration). Read
// Status after each receive.
func (s *Speaker) Changes() <-chan struct{} { return s.changes }

func (s *Speaker) notify() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// Set makes the speaker's sessions and routes those of d, changing only what
// differs: sessions whose settings changed are re-created, except for a
// change of the BFD settings alone while no BFD session is Up (turning BFD
// on, or a router that does not answer BFD), which keeps the BGP session
// (see sessionChangeOf); routes whose peers or attributes changed are
// re-advertised; the rest is untouched.
// A peer that cannot be configured (see PeerStatus.ConfigError) does not stop
// the others. Set returns an error only when GoBGP fails; what it did apply
// stays applied, and the next Set completes the rest.
//
// With graceful restart, the first Set after New should carry the complete
// state: a router flushes the routes of the previous session that the new
// one has not re-advertised by its End-of-RIB.
func (s *Speaker) Set(ctx context.Context, d Desired) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	return s.set(ctx, d)
}

// set is Set with s.setMu held.
func (s *Speaker) set(ctx context.Context, d Desired) error {
	if s.closed {
		return ErrClosed
	}
	s.last = d
	s.advertiseOn(unnumberedInterfaces(d.Peers))
	var unresolved map[string]error
	d.Peers, unresolved = resolveInterfaces(d.Peers, s.neighbor)
	s.resolved = resolutions(d.Peers, unresolved)
	want, problems := resolveDesired(d, s.opts.ListenPort != 0, s.nextHop, unresolved)
	p, dropped := makePlan(s.applied, want, s.liveBFD(ctx))
	s.updateRecords(d, want, problems, dropped)
	defer s.notify()
	var err error
	if !p.empty() || s.assignmentDirty {
		err = s.apply(ctx, p)
	}
	s.adoptSessions(ctx)
	return err
}

// advertiseOn makes router advertisements go out on exactly ifaces (the
// unnumbered peers' interfaces). Called with s.setMu held.
func (s *Speaker) advertiseOn(ifaces []string) {
	for name, stop := range s.advertisers {
		if !slices.Contains(ifaces, name) {
			stop()
			delete(s.advertisers, name)
		}
	}
	for _, name := range ifaces {
		if _, ok := s.advertisers[name]; !ok {
			ctx, stop := context.WithCancel(s.ctx)
			s.advertisers[name] = stop
			go s.advertise(ctx, name)
		}
	}
}

// resolutions returns, by interface, what the unnumbered peers' interfaces
// resolved to: the router's address, or the error.
func resolutions(peers []Peer, unresolved map[string]error) map[string]string {
	out := map[string]string{}
	for _, p := range peers {
		if p.Interface == "" {
			continue
		}
		if err := unresolved[p.Name]; err != nil {
			out[p.Interface] = "error: " + err.Error()
		} else {
			out[p.Interface] = p.Address.String()
		}
	}
	return out
}

// checkNeighbors finds the unnumbered peers' routers again and, when one
// appeared, changed or went, applies the last Set's Desired again. A Set
// running meanwhile finds them itself, so checkNeighbors then does nothing.
func (s *Speaker) checkNeighbors(ctx context.Context) {
	if !s.setMu.TryLock() {
		return
	}
	defer s.setMu.Unlock()
	if s.closed || len(s.resolved) == 0 {
		return
	}
	peers, unresolved := resolveInterfaces(s.last.Peers, s.neighbor)
	if maps.Equal(resolutions(peers, unresolved), s.resolved) {
		return
	}
	_ = s.set(ctx, s.last) // a failure is reported in the statuses, and the next Set retries
}

// apply carries out p, updating s.applied after each GoBGP call that
// succeeds. It stops at the first failure of a policy or path operation; a
// peer GoBGP refuses only sets that peer's ConfigError.
func (s *Speaker) apply(ctx context.Context, p plan) error {
	for _, addr := range p.deleteSessions {
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
			return fmt.Errorf("bgp: delete peer %v: %w", addr, err)
		}
		delete(s.applied.sessions, addr)
		s.sessionDeleted(addr)
	}
	for _, sc := range p.updateSessions {
		// UpdatePeer keeps the BGP session (see sessionUpdate); its
		// NeedsSoftResetIn only comes with policy changes.
		if _, err := s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: apiPeer(sc)}); err != nil {
			return fmt.Errorf("bgp: update the BFD settings of peer %v: %w", sc.Address, err)
		}
		s.applied.sessions[sc.Address] = sc
		s.bfdRestarted(sc.Address)
	}
	for _, addr := range p.addNeighborSets {
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: neighborSet(addr)}); err != nil {
			return fmt.Errorf("bgp: add neighbor set of %v: %w", addr, err)
		}
		s.applied.neighborSets[addr] = true
	}
	for _, g := range p.addGroups {
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: tagSet(g)}); err != nil {
			return fmt.Errorf("bgp: add tag set of export group %d: %w", g.id, err)
		}
		if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: groupPolicy(g)}); err != nil {
			_ = s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: tagSet(g), All: true})
			return fmt.Errorf("bgp: add export policy of group %d: %w", g.id, err)
		}
		s.applied.groups[g.key()] = g
		s.assignmentDirty = true
	}
	if s.assignmentDirty {
		if err := s.setAssignment(ctx, s.applied.groups); err != nil {
			return err
		}
	}
	if err := s.putPaths(p.putPaths); err != nil {
		return err
	}
	if err := s.deletePaths(p.deletePaths); err != nil {
		return err
	}
	for _, sc := range p.addSessions {
		// The record follows GoBGP's events from before AddPeer returns.
		s.sessionAdding(sc.Address)
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(sc)}); err != nil {
			s.sessionRefused(sc.Address, err)
			continue
		}
		s.applied.sessions[sc.Address] = sc
	}
	if len(p.removeGroups) > 0 {
		keep := maps.Clone(s.applied.groups)
		for _, g := range p.removeGroups {
			delete(keep, g.key())
		}
		s.assignmentDirty = true
		if err := s.setAssignment(ctx, keep); err != nil {
			return err
		}
		for _, g := range p.removeGroups {
			if err := s.srv.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: groupName(g.id)}, All: true}); err != nil {
				return fmt.Errorf("bgp: delete export policy of group %d: %w", g.id, err)
			}
			if err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: tagSet(g), All: true}); err != nil {
				return fmt.Errorf("bgp: delete tag set of group %d: %w", g.id, err)
			}
			delete(s.applied.groups, g.key())
		}
	}
	for _, addr := range p.removeNeighborSets {
		if err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: neighborSet(addr), All: true}); err != nil {
			return fmt.Errorf("bgp: delete neighbor set of %v: %w", addr, err)
		}
		delete(s.applied.neighborSets, addr)
	}
	return nil
}

// setAssignment makes the global export policies exactly groups' policies,
// in id order, rejecting everything else.
func (s *Speaker) setAssignment(ctx context.Context, groups map[groupKey]group) error {
	ids := make([]uint16, 0, len(groups))
	for _, g := range groups {
		ids = append(ids, g.id)
	}
	slices.Sort(ids)
	policies := make([]*api.Policy, len(ids))
	for i, id := range ids {
		policies[i] = &api.Policy{Name: groupName(id)}
	}
	err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT,
		Policies: policies, DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}})
	if err != nil {
		return fmt.Errorf("bgp: set the export policies: %w", err)
	}
	s.assignmentDirty = false
	return nil
}

// putPaths adds or replaces paths in the global RIB, in batches.
func (s *Speaker) putPaths(specs []pathSpec) error {
	for start := 0; start < len(specs); start += pathBatch {
		batch := specs[start:min(start+pathBatch, len(specs))]
		paths := make([]*apiutil.Path, len(batch))
		for i, spec := range batch {
			p, err := apiPath(spec)
			if err != nil {
				return err
			}
			paths[i] = p
		}
		resps, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: paths})
		for i, spec := range batch {
			if i < len(resps) && resps[i].Error == nil {
				s.applied.paths[spec.prefix] = spec.tags
			}
		}
		if err != nil {
			return fmt.Errorf("bgp: add paths: %w", err)
		}
	}
	return nil
}

// deletePaths withdraws prefixes from the global RIB, in batches.
func (s *Speaker) deletePaths(prefixes []netip.Prefix) error {
	for start := 0; start < len(prefixes); start += pathBatch {
		batch := prefixes[start:min(start+pathBatch, len(prefixes))]
		paths := make([]*apiutil.Path, len(batch))
		for i, prefix := range batch {
			p, err := apiPath(pathSpec{prefix: prefix, tags: s.applied.paths[prefix]})
			if err != nil {
				return err
			}
			paths[i] = p
		}
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: paths}); err != nil {
			return fmt.Errorf("bgp: delete paths: %w", err)
		}
		for _, prefix := range batch {
			delete(s.applied.paths, prefix)
		}
	}
	return nil
}

// Close stops the speaker. Sessions with graceful restart are closed
// without a notification, so their routers keep the routes as stale while
// the speaker restarts; the others are told the peer is deconfigured and
// withdraw the routes at once.
func (s *Speaker) Close(ctx context.Context) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	err := s.srv.StopBgp(ctx, &api.StopBgpRequest{AllowGracefulRestart: true})
	s.cancel()
	// Stop stops the BFD server; its own StopBgp fails (and logs it, which
	// the log handler drops) since the BGP server is stopped already.
	s.srv.Stop()
	<-s.done
	if err != nil {
		return fmt.Errorf("bgp: stop GoBGP: %w", err)
	}
	return nil
}

// RouterIDFor returns a router id for a node: its first IPv4 address in
// addrs, or, for a node without one, an id in 240.0.0.0/4 (reserved, never
// routed) derived from the node's name.
func RouterIDFor(nodeName string, addrs []netip.Addr) netip.Addr {
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() && !a.IsUnspecified() && !a.IsLoopback() {
			return a
		}
	}
	// FNV-1a of the name, 28 bits of it after the 240/4 prefix.
	h := uint32(2166136261)
	for i := 0; i < len(nodeName); i++ {
		h ^= uint32(nodeName[i])
		h *= 16777619
	}
	v := 0xF0000000 | h&0x0FFFFFFF
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// errorText returns err's message, or "".
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// joinNonEmpty joins the non-empty parts with "; ".
func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
