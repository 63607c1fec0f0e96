package soak

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
)

// The soak's world: its namespaces, pools and pods. Every address is in the
// lab's layer-2 or routed range (see netlab's address plan).
const (
	NamespaceA     = "soak-a" // may use every soak pool, and external IPs
	NamespaceB     = "soak-b" // also has a pool of its own; no external IPs
	NamespaceProbe = "soak-probe"

	PoolL2       = "soak-l2"        // auto-assign; grown and shrunk
	PoolL2B      = "soak-l2-b"      // soak-b only, by name; deleted and recreated
	PoolExternal = "soak-ext"       // external IPs for soak-a
	PoolBGP      = "soak-bgp"       // routed, by name
	PoolOverlap  = "soak-overlap"   // auto-assign, overlapping soak-l2 when it is large; created and deleted
	PoolProbeL2  = "soak-probe-l2"  // the probed Services' pools: never touched
	PoolProbeBGP = "soak-probe-bgp" //

	// AsksAnnotation counts a Service's edits that ask for another address.
	AsksAnnotation = "soak.herald.dev/asks"
	// ManagedLabel marks the soak's Services.
	ManagedLabel = "soak.herald.dev/managed"
	// OtherClass is a loadBalancerClass Herald does not serve.
	OtherClass = "example.com/other-lb"
	// BadAnnotation is the annotation a "bad annotation" edit sets, with
	// BadValue, which ParseServiceAnnotations refuses.
	BadAnnotation = "herald.dev/allocate-external-ip"
	BadValue      = "maybe!"
	// SharingKeys are the keys Services draw from.
	PodsPerNode = 3
)

// SharingKeys are the sharing keys Services draw from.
var SharingKeys = []string{"k1", "k2"}

// L2Sizes are the sizes pool soak-l2 takes (per family, from its first
// address).
var L2Sizes = []int{4, 8, 16}

// Fixed ranges of the pools.
var (
	L2First4  = netip.MustParseAddr("198.51.100.128")
	L2First6  = netip.MustParseAddr("2001:db8:1::1:0")
	L2BRanges = []string{"198.51.100.160/29", "2001:db8:1::1:100/125"}
	ExtRanges = []string{"198.51.100.176/30"}
	BGPRanges = []string{"203.0.113.192/28", "2001:db8:200::/124"}
	// OverlapRanges overlap soak-l2 at its largest size (16), which, older,
	// keeps the shared addresses.
	OverlapRanges = []string{"198.51.100.136-198.51.100.151", "2001:db8:1::1:8-2001:db8:1::1:17"}
	ProbeL2       = netip.MustParseAddr("198.51.100.184")
	ProbeBGP      = netip.MustParseAddr("203.0.113.240")
	ProbeRanges   = map[string][]string{PoolProbeL2: {"198.51.100.184/30"}, PoolProbeBGP: {"203.0.113.240/30"}}
)

// L2Ranges returns pool soak-l2's addresses at size n.
func L2Ranges(n int) []string {
	return []string{rangeOf(L2First4, n), rangeOf(L2First6, n)}
}

func rangeOf(first netip.Addr, n int) string {
	last := first
	for range n - 1 {
		last = last.Next()
	}
	return first.String() + "-" + last.String()
}

// Mode is how a soak Service asks for an address.
type Mode string

// The modes.
const (
	ModeL2         Mode = "l2"          // LoadBalancer from soak-l2 (automatic)
	ModeL2B        Mode = "l2-b"        // LoadBalancer naming soak-l2-b
	ModeBGP        Mode = "bgp"         // LoadBalancer naming soak-bgp
	ModeExternal   Mode = "external"    // ClusterIP with user-written spec.externalIPs
	ModeAllocExt   Mode = "alloc-ext"   // ClusterIP asking for an allocated external IP
	ModeOtherClass Mode = "other-class" // LoadBalancer of another class
)

// Families are a Service's IP families.
type Families string

// The families.
const (
	V4   Families = "v4"
	V6   Families = "v6"
	Dual Families = "dual"
)

// EndpointState is an endpoint's condition, as netlab writes it.
type EndpointState string

// The endpoint states.
const (
	Ready              EndpointState = "ready"
	NotReady           EndpointState = "not-ready"
	TerminatingServing EndpointState = "terminating-serving"
	Terminating        EndpointState = "terminating"
)

var endpointStates = []EndpointState{Ready, NotReady, TerminatingServing, Terminating}

// PodName names the soak's k-th pod (from 1) on node.
func PodName(node string, k int) string { return fmt.Sprintf("soak-%s-%d", node, k) }

// ServiceSpec is the whole of what the soak wants one Service and its
// endpoints to be.
type ServiceSpec struct {
	Namespace, Name string
	Mode            Mode
	Local           bool
	Families        Families
	SharingKey      string
	Port            int32
	// Requested are the addresses of annotation herald.dev/addresses.
	Requested []netip.Addr
	// ExternalIPs are user-written spec.externalIPs (ModeExternal).
	ExternalIPs []netip.Addr
	// Bad adds BadAnnotation=BadValue.
	Bad bool
	// Asks is the AsksAnnotation value.
	Asks int
	// Endpoints are pod name -> state.
	Endpoints map[string]EndpointState
}

// Key returns "namespace/name".
func (s *ServiceSpec) Key() string { return s.Namespace + "/" + s.Name }

func (s *ServiceSpec) clone() *ServiceSpec {
	c := *s
	c.Requested = slices.Clone(s.Requested)
	c.ExternalIPs = slices.Clone(s.ExternalIPs)
	c.Endpoints = maps.Clone(s.Endpoints)
	return &c
}

// OpKind names an operation.
type OpKind string

// The operations.
const (
	OpCreate    OpKind = "create"
	OpDelete    OpKind = "delete"
	OpEdit      OpKind = "edit"
	OpEndpoints OpKind = "endpoints"
	OpPool      OpKind = "pool"
	// OpConfig edits the advertisements or the BGP peer (Op.Config).
	OpConfig OpKind = "config"
)

// ConfigState is the state of the soak's advertisements and BGP peer.
type ConfigState struct {
	// L2Exclude is a node the L2Advertisement's nodeSelectors leave out
	// ("": none).
	L2Exclude string
	// Communities says whether the BGPAdvertisement tags its routes with a
	// community (a change of attributes only: no route may come or go).
	Communities bool
	// BFDMultiplier is the BGPPeer's BFD multiplier (3 or 4).
	BFDMultiplier int32
}

// InitialConfig is the advertisements' and peer's state at the start.
var InitialConfig = ConfigState{BFDMultiplier: 3}

// Op is one change: the whole desired state of what it touches.
type Op struct {
	Kind OpKind
	// Desc says what changes, for the report.
	Desc string
	// Service is the Service's desired state (nil for OpPool); for OpDelete,
	// the Service that goes.
	Service *ServiceSpec
	// Config is the state an OpConfig sets.
	Config *ConfigState
	// Pool and PoolRanges are the pool an OpPool sets to PoolRanges (nil:
	// deletes it).
	Pool       string
	PoolRanges []string
}

// FaultKind names a fault.
type FaultKind string

// The faults.
const (
	FaultLeaderKill  FaultKind = "leader-sigkill"
	FaultLeaderTerm  FaultKind = "leader-sigterm"
	FaultSpeakerKill FaultKind = "speaker-sigkill"
	FaultSpeakerTerm FaultKind = "speaker-sigterm"
	FaultLinkCut     FaultKind = "link-cut"
	// FaultSpeakerFreeze stops a speaker with SIGSTOP and resumes it with
	// SIGCONT: CPU starvation of one node taken to the limit. The speaker
	// wakes with a stale view of the cluster while the others took over.
	FaultSpeakerFreeze FaultKind = "speaker-freeze"
	// FaultCPUStarve holds a node's speaker and kube-proxy to 2% of a CPU
	// (a cgroup quota) for the fault's length.
	FaultCPUStarve FaultKind = "cpu-starve"
	// FaultAPIRestart restarts the kube-apiserver (SIGTERM, then start).
	FaultAPIRestart FaultKind = "apiserver-restart"
	// FaultAPISlow delays every chunk of data between the lab's processes
	// and the apiserver by 500 ms each way; FaultAPIFail cuts every open
	// connection and refuses half of the new ones. Both last the fault's
	// length. The soak's own observations do not go through that path.
	FaultAPISlow FaultKind = "api-slow"
	FaultAPIFail FaultKind = "api-failing"
)

// OnNode reports whether the fault hits one node (the others hit the control
// plane).
func (k FaultKind) OnNode() bool {
	switch k {
	case FaultLeaderKill, FaultLeaderTerm, FaultAPIRestart, FaultAPISlow, FaultAPIFail:
		return false
	}
	return true
}

// AllFaults are the fault kinds made by default. (Adding one changes what a
// seed replays.)
var AllFaults = []FaultKind{FaultLeaderKill, FaultLeaderTerm, FaultSpeakerKill, FaultSpeakerTerm, FaultLinkCut,
	FaultCPUStarve, FaultAPIRestart, FaultAPISlow, FaultAPIFail}

// KnownFaults are every fault kind, those made only on request included.
var KnownFaults = append(slices.Clone(AllFaults), FaultSpeakerFreeze)

// Fault is one fault: it starts at one step and ends (the process restarted,
// the link restored) Steps steps later.
type Fault struct {
	Kind FaultKind
	// Node is the node hit ("" for the leader controller).
	Node  string
	Steps int
}

// Step is what the soak does at one tick: at most one operation, and the
// start or end of a fault.
type Step struct {
	Index      int
	Op         *Op
	FaultStart *Fault
	FaultEnd   *Fault
}

// PlanConfig configures a Plan.
type PlanConfig struct {
	Seed  uint64
	Nodes []string
	// MaxServices bounds the live soak Services (default 14).
	MaxServices int
	// Faults are the kinds of fault to make (none: no faults).
	Faults []FaultKind
	// FaultGap and FaultLength are the ranges, in steps, of the time between
	// two faults and of a fault's length (defaults [15, 30] and [5, 12]).
	FaultGap, FaultLength [2]int
}

// Plan draws the soak's steps from its seed. Its choices depend only on the
// seed and on its own record of what it asked for, never on what the product
// did, so the same seed gives the same steps.
type Plan struct {
	cfg       PlanConfig
	rng       *rand.Rand
	step      int
	services  map[string]*ServiceSpec
	created   int
	l2Size    int
	poolB     bool
	overlap   bool // whether soak-overlap exists
	config    ConfigState
	fault     *Fault
	faultEnd  int
	nextFault int
}

// NewPlan returns the plan for cfg.
func NewPlan(cfg PlanConfig) *Plan {
	if cfg.MaxServices == 0 {
		cfg.MaxServices = 14
	}
	if cfg.FaultGap == [2]int{} {
		cfg.FaultGap = [2]int{15, 30}
	}
	if cfg.FaultLength == [2]int{} {
		cfg.FaultLength = [2]int{5, 12}
	}
	p := &Plan{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed50a6)),
		services: map[string]*ServiceSpec{}, l2Size: 8, poolB: true, config: InitialConfig}
	p.nextFault = p.between(cfg.FaultGap)
	return p
}

// InitialL2Size is soak-l2's size at the start.
func (p *Plan) InitialL2Size() int { return 8 }

func (p *Plan) between(r [2]int) int { return r[0] + p.rng.IntN(r[1]-r[0]+1) }

// Next returns the next step.
func (p *Plan) Next() Step {
	s := Step{Index: p.step}
	if p.fault != nil && p.step >= p.faultEnd {
		s.FaultEnd = p.fault
		p.fault = nil
		p.nextFault = p.step + p.between(p.cfg.FaultGap)
	} else if p.fault == nil && len(p.cfg.Faults) > 0 && p.step >= p.nextFault {
		f := &Fault{Kind: p.cfg.Faults[p.rng.IntN(len(p.cfg.Faults))], Steps: p.between(p.cfg.FaultLength)}
		if f.Kind.OnNode() {
			f.Node = p.cfg.Nodes[p.rng.IntN(len(p.cfg.Nodes))]
		}
		p.fault, p.faultEnd = f, p.step+f.Steps
		s.FaultStart = f
	}
	s.Op = p.op()
	p.step++
	return s
}

// op draws one operation and applies it to the plan's record.
func (p *Plan) op() *Op {
	n := len(p.services)
	switch r := p.rng.IntN(100); {
	case n == 0 || (r < 22 && n < p.cfg.MaxServices):
		return p.create()
	case r < 32 || n >= p.cfg.MaxServices && r < 40:
		return p.remove()
	case r < 55:
		return p.edit()
	case r < 93:
		return p.endpoints()
	case r < 97:
		return p.pool()
	default:
		return p.configEdit()
	}
}

// configEdit changes one thing about the advertisements or the peer.
func (p *Plan) configEdit() *Op {
	c := &p.config
	var desc string
	switch r := p.rng.IntN(3); r {
	case 0:
		if c.L2Exclude != "" {
			c.L2Exclude = ""
			desc = "L2Advertisement: every node"
		} else {
			c.L2Exclude = p.cfg.Nodes[p.rng.IntN(len(p.cfg.Nodes))]
			desc = "L2Advertisement: every node but " + c.L2Exclude
		}
	case 1:
		c.Communities = !c.Communities
		desc = fmt.Sprintf("BGPAdvertisement: community %v", c.Communities)
	default:
		c.BFDMultiplier = 7 - c.BFDMultiplier
		desc = fmt.Sprintf("BGPPeer: BFD multiplier %d", c.BFDMultiplier)
	}
	cp := *c
	return &Op{Kind: OpConfig, Config: &cp, Desc: desc}
}

func (p *Plan) pick() *ServiceSpec {
	keys := slices.Sorted(maps.Keys(p.services))
	return p.services[keys[p.rng.IntN(len(keys))]]
}

func (p *Plan) chance(percent int) bool { return p.rng.IntN(100) < percent }

func (p *Plan) create() *Op {
	p.created++
	s := &ServiceSpec{Namespace: NamespaceA, Name: fmt.Sprintf("svc-%d", p.created), Families: V4, Port: 80,
		Endpoints: map[string]EndpointState{}}
	if p.chance(30) {
		s.Namespace = NamespaceB
	}
	switch r := p.rng.IntN(100); {
	case r < 45:
		s.Mode = ModeL2
	case r < 55:
		s.Mode = ModeL2B
	case r < 75:
		s.Mode = ModeBGP
	case r < 85:
		s.Mode = ModeExternal
	case r < 92:
		s.Mode = ModeAllocExt
	default:
		s.Mode = ModeOtherClass
	}
	s.Local = p.chance(40)
	if s.Mode == ModeL2 || s.Mode == ModeL2B || s.Mode == ModeBGP {
		switch r := p.rng.IntN(100); {
		case r < 20:
			s.Families = V6
		case r < 40:
			s.Families = Dual
		}
	}
	if s.Mode == ModeL2 && p.chance(35) {
		s.SharingKey = SharingKeys[p.rng.IntN(len(SharingKeys))]
		s.Port = 80 + int32(p.rng.IntN(4))
	}
	if (s.Mode == ModeL2 || s.Mode == ModeL2B || s.Mode == ModeBGP) && p.chance(15) {
		s.Requested = p.requested(s)
	}
	if s.Mode == ModeExternal {
		s.ExternalIPs = []netip.Addr{p.addrIn(netip.MustParsePrefix(ExtRanges[0]), 4)}
	}
	for range 1 + p.rng.IntN(2) {
		s.Endpoints[p.randomPod()] = Ready
	}
	p.services[s.Key()] = s
	return &Op{Kind: OpCreate, Service: s.clone(), Desc: describe(s)}
}

// requested draws addresses for the annotation, one per family of s, from
// its pool's range (which may be taken: the controller then refuses).
func (p *Plan) requested(s *ServiceSpec) []netip.Addr {
	var v4, v6 netip.Addr
	switch s.Mode {
	case ModeL2:
		v4, v6 = p.addrFrom(L2First4, 16), p.addrFrom(L2First6, 16)
	case ModeL2B:
		v4 = p.addrIn(netip.MustParsePrefix(L2BRanges[0]), 8)
		v6 = p.addrIn(netip.MustParsePrefix(L2BRanges[1]), 8)
	default:
		v4 = p.addrIn(netip.MustParsePrefix(BGPRanges[0]), 16)
		v6 = p.addrIn(netip.MustParsePrefix(BGPRanges[1]), 16)
	}
	switch s.Families {
	case V4:
		return []netip.Addr{v4}
	case V6:
		return []netip.Addr{v6}
	}
	return []netip.Addr{v4, v6}
}

func (p *Plan) addrIn(pr netip.Prefix, n int) netip.Addr { return p.addrFrom(pr.Addr(), n) }

func (p *Plan) addrFrom(first netip.Addr, n int) netip.Addr {
	a := first
	for range p.rng.IntN(n) {
		a = a.Next()
	}
	return a
}

func (p *Plan) randomPod() string {
	return PodName(p.cfg.Nodes[p.rng.IntN(len(p.cfg.Nodes))], 1+p.rng.IntN(PodsPerNode))
}

func (p *Plan) remove() *Op {
	s := p.pick()
	delete(p.services, s.Key())
	return &Op{Kind: OpDelete, Service: s.clone(), Desc: "delete " + s.Key()}
}

func (p *Plan) edit() *Op {
	s := p.pick()
	var desc string
	switch r := p.rng.IntN(100); {
	case r < 30:
		s.Local = !s.Local
		desc = fmt.Sprintf("externalTrafficPolicy Local=%v", s.Local)
	case r < 55:
		s.Bad = !s.Bad
		desc = fmt.Sprintf("bad annotation %v", s.Bad)
	case r < 70 && (s.Mode == ModeL2 || s.Mode == ModeL2B || s.Mode == ModeBGP):
		if len(s.Requested) > 0 && p.chance(40) {
			s.Requested = nil
		} else {
			s.Requested = p.requested(s)
		}
		s.Asks++
		desc = fmt.Sprintf("requested addresses %v", s.Requested)
	case r < 85 && s.Mode == ModeL2:
		s.SharingKey = ""
		if p.chance(70) {
			s.SharingKey = SharingKeys[p.rng.IntN(len(SharingKeys))]
		}
		s.Asks++
		desc = fmt.Sprintf("sharing key %q", s.SharingKey)
	default:
		s.Port = 80 + int32(p.rng.IntN(4))
		s.Asks++
		desc = fmt.Sprintf("port %d", s.Port)
	}
	return &Op{Kind: OpEdit, Service: s.clone(), Desc: "edit " + s.Key() + ": " + desc}
}

func (p *Plan) endpoints() *Op {
	s := p.pick()
	pods := slices.Sorted(maps.Keys(s.Endpoints))
	var desc string
	switch r := p.rng.IntN(100); {
	case len(pods) == 0 || r < 25:
		pod := p.randomPod()
		s.Endpoints[pod] = Ready
		desc = "ready " + pod
	case r < 60:
		pod := pods[p.rng.IntN(len(pods))]
		st := endpointStates[p.rng.IntN(len(endpointStates))]
		s.Endpoints[pod] = st
		desc = fmt.Sprintf("%s %s", pod, st)
	case r < 80:
		pod := pods[p.rng.IntN(len(pods))]
		delete(s.Endpoints, pod)
		desc = "remove " + pod
	default:
		from := pods[p.rng.IntN(len(pods))]
		to := p.randomPod()
		delete(s.Endpoints, from)
		s.Endpoints[to] = Ready
		desc = fmt.Sprintf("move %s to %s", from, to)
	}
	return &Op{Kind: OpEndpoints, Service: s.clone(), Desc: "endpoints " + s.Key() + ": " + desc}
}

func (p *Plan) pool() *Op {
	if p.chance(25) {
		p.overlap = !p.overlap
		if p.overlap {
			return &Op{Kind: OpPool, Pool: PoolOverlap, PoolRanges: OverlapRanges, Desc: "create " + PoolOverlap + ", overlapping " + PoolL2}
		}
		return &Op{Kind: OpPool, Pool: PoolOverlap, Desc: "delete " + PoolOverlap}
	}
	if p.chance(60) {
		sizes := slices.DeleteFunc(slices.Clone(L2Sizes), func(n int) bool { return n == p.l2Size })
		p.l2Size = sizes[p.rng.IntN(len(sizes))]
		return &Op{Kind: OpPool, Pool: PoolL2, PoolRanges: L2Ranges(p.l2Size), Desc: fmt.Sprintf("resize %s to %d per family", PoolL2, p.l2Size)}
	}
	p.poolB = !p.poolB
	if p.poolB {
		return &Op{Kind: OpPool, Pool: PoolL2B, PoolRanges: L2BRanges, Desc: "recreate " + PoolL2B}
	}
	return &Op{Kind: OpPool, Pool: PoolL2B, Desc: "delete " + PoolL2B}
}

// describe writes a Service spec in one line.
func describe(s *ServiceSpec) string {
	d := fmt.Sprintf("create %s: %s %s local=%v port=%d", s.Key(), s.Mode, s.Families, s.Local, s.Port)
	if s.SharingKey != "" {
		d += " sharing=" + s.SharingKey
	}
	if len(s.Requested) > 0 {
		d += fmt.Sprintf(" requested=%v", s.Requested)
	}
	if len(s.ExternalIPs) > 0 {
		d += fmt.Sprintf(" externalIPs=%v", s.ExternalIPs)
	}
	d += fmt.Sprintf(" endpoints=%v", s.Endpoints)
	return d
}
