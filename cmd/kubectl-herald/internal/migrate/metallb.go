package migrate

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// MetalLBGroup is the API group of MetalLB's resources.
const MetalLBGroup = "metallb.io"

// The kinds of MetalLB resources the migration reads.
const (
	KindIPAddressPool    = "IPAddressPool"
	KindL2Advertisement  = "L2Advertisement"
	KindBGPAdvertisement = "BGPAdvertisement"
	KindBGPPeer          = "BGPPeer"
	KindBFDProfile       = "BFDProfile"
	KindCommunity        = "Community"
)

// MetalLBKinds are the kinds of MetalLB resources the migration reads, in
// the order it converts them.
var MetalLBKinds = []string{KindIPAddressPool, KindL2Advertisement, KindBGPAdvertisement, KindBGPPeer, KindBFDProfile, KindCommunity}

// Labels and annotations the migration puts on what it writes.
const (
	// LabelMigratedFrom marks a resource the migration wrote, by source.
	LabelMigratedFrom = "herald.dev/migrated-from"
	// AnnotationMigratedFrom names the source object: Kind/namespace/name.
	AnnotationMigratedFrom = "herald.dev/migrated-from"
)

// MetalLBInput is what the migration reads: MetalLB's resources (any other
// object is ignored) and the cluster's Services.
type MetalLBInput struct {
	Objects  []*unstructured.Unstructured
	Services []*corev1.Service
}

// metallbPools is what converting the pools leaves for the rest of the plan.
type metallbPools struct {
	byName map[string]*v1alpha1.IPPool
	labels map[string]map[string]string
	// ranges are every pool's address ranges, for finding an address's pool.
	ranges []poolRange
}

type poolRange struct {
	pool     string
	from, to netip.Addr
}

func (p metallbPools) poolOf(a netip.Addr) string {
	for _, r := range p.ranges {
		if r.from.Compare(a) <= 0 && a.Compare(r.to) <= 0 {
			return r.pool
		}
	}
	return ""
}

// MetalLB plans the migration of in from MetalLB to Herald. It is pure.
func MetalLB(in MetalLBInput) *Plan {
	p := &Plan{Source: "MetalLB"}
	byKind := map[string][]*unstructured.Unstructured{}
	for _, o := range in.Objects {
		if o == nil {
			continue
		}
		gv, kind := o.GroupVersionKind().GroupVersion(), o.GetKind()
		if gv.Group != MetalLBGroup {
			continue
		}
		byKind[kind] = append(byKind[kind], o)
	}
	for k, objs := range byKind {
		if !slices.Contains(MetalLBKinds, k) {
			for _, o := range objs {
				p.Dropped = append(p.Dropped, Dropped{Object: ref(o), Field: "(whole object)", Reason: "kubectl-herald does not know this MetalLB kind: nothing of it is carried"})
			}
		}
		slices.SortFunc(objs, func(a, b *unstructured.Unstructured) int {
			return cmp.Or(strings.Compare(a.GetName(), b.GetName()), strings.Compare(a.GetNamespace(), b.GetNamespace()))
		})
	}
	pools := p.convertPools(byKind[KindIPAddressPool])
	communities := p.communityAliases(byKind[KindCommunity])
	bfd := p.bfdProfiles(byKind[KindBFDProfile])
	for _, o := range byKind[KindL2Advertisement] {
		p.convertL2Advertisement(o, pools)
	}
	for _, o := range byKind[KindBGPAdvertisement] {
		p.convertBGPAdvertisement(o, pools, communities)
	}
	for _, o := range byKind[KindBGPPeer] {
		p.convertBGPPeer(o, bfd)
	}
	p.planServices(in.Services, metallbAnnotations, pools, false)
	p.sort()
	return p
}

func ref(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

func spec(o *unstructured.Unstructured) *fields {
	m, _, _ := unstructured.NestedMap(o.Object, "spec")
	return newFields(m)
}

// objectMeta is the metadata of a Herald object converted from o: its name
// and labels, and where it came from.
func objectMeta(o *unstructured.Unstructured, source string) metav1.ObjectMeta {
	l := map[string]string{}
	for k, v := range o.GetLabels() {
		l[k] = v
	}
	l[LabelMigratedFrom] = source
	return metav1.ObjectMeta{
		Name:        o.GetName(),
		Labels:      l,
		Annotations: map[string]string{AnnotationMigratedFrom: ref(o)},
	}
}

func (p *Plan) drop(o *unstructured.Unstructured, field string, value any, reason string) {
	p.Dropped = append(p.Dropped, Dropped{Object: ref(o), Field: field, Value: valueString(value), Reason: reason})
}

func (p *Plan) problem(o *unstructured.Unstructured, err error) {
	p.Problems = append(p.Problems, fmt.Sprintf("%s: %v", ref(o), err))
}

// metallbNeutral are MetalLB fields whose value, when it is the one given
// here (MetalLB's CRDs write some as defaults), asks for nothing Herald does
// not already do: they are taken as carried.
var metallbNeutral = map[string]any{
	"BGPPeer.spec.disableMP":              false,
	"BGPPeer.spec.dualStackAddressFamily": true,
	"BGPPeer.spec.enableGracefulRestart":  false,
	"BGPPeer.spec.ebgpMultiHop":           false,
	"BFDProfile.spec.echoMode":            false,
	"BFDProfile.spec.passiveMode":         false,
}

// dropRest reports every field of f left after conversion.
func (p *Plan) dropRest(o *unstructured.Unstructured, f *fields, prefix string) {
	for _, l := range f.rest(prefix) {
		if v, ok := metallbNeutral[o.GetKind()+"."+l.Path]; ok && v == l.Value {
			continue
		}
		reason, ok := metallbNoEquivalent[o.GetKind()+"."+l.Path]
		if !ok {
			reason = "Herald has no equivalent of this field"
		}
		p.drop(o, l.Path, l.Value, reason)
	}
}

// metallbNoEquivalent explains the MetalLB fields Herald does not carry.
var metallbNoEquivalent = map[string]string{
	"BGPPeer.spec.vrf":             "Herald's speakers peer from the default VRF only; keep this peer on MetalLB or reach the router from the default VRF",
	"BGPPeer.spec.connectTime":     "Herald uses GoBGP's connect retry timer and cannot set it per peer; sessions still establish, the first attempt after a failure may wait longer",
	"BGPPeer.spec.routerID":        "Herald's speakers use the node's address as BGP router ID; a fixed router ID for every node is not supported",
	"BGPPeer.spec.disableMP":       "Herald always negotiates the address families a session carries (multiprotocol); it has no switch for one session per family",
	"BGPPeer.spec.interface":       "BGP unnumbered (peering over an interface's link-local address) is not supported: give peerAddress",
	"BGPPeer.spec.dynamicASN":      "set peerASN explicitly (Herald has no dynamic ASN)",
	"BFDProfile.spec.echoMode":     "Herald's native BFD does not run echo mode; detection uses the control packets' intervals",
	"BFDProfile.spec.echoInterval": "Herald's native BFD does not run echo mode",
	"BFDProfile.spec.passiveMode":  "Herald's BFD always starts its sessions actively",
	"BFDProfile.spec.minimumTtl":   "Herald's BFD runs single-hop (TTL 255) and has no minimum TTL setting",
}

func valueString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// convertPools converts IPAddressPools, and reports addresses two pools claim.
func (p *Plan) convertPools(objs []*unstructured.Unstructured) metallbPools {
	out := metallbPools{byName: map[string]*v1alpha1.IPPool{}, labels: map[string]map[string]string{}}
	for _, o := range objs {
		f := spec(o)
		pool := &v1alpha1.IPPool{TypeMeta: typeMeta("IPPool"), ObjectMeta: objectMeta(o, "metallb")}
		addrs, _, err := f.strings("addresses")
		if err != nil {
			p.problem(o, err)
			continue
		}
		if len(addrs) == 0 {
			p.problem(o, fmt.Errorf("spec.addresses is empty: an IPPool needs at least one address"))
			continue
		}
		ok := true
		for _, a := range addrs {
			norm, r, note, err := normalizeBlock(a)
			if err != nil {
				p.problem(o, err)
				ok = false
				continue
			}
			if note != "" {
				p.Notes = append(p.Notes, fmt.Sprintf("%s: %s", ref(o), note))
			}
			pool.Spec.Addresses = append(pool.Spec.Addresses, norm)
			out.ranges = append(out.ranges, poolRange{pool: o.GetName(), from: r.from, to: r.to})
		}
		if !ok {
			continue
		}
		if v, set, err := f.boolean("autoAssign"); err != nil {
			p.problem(o, err)
		} else if set {
			pool.Spec.AutoAssign = ptr.To(v)
		}
		if v, _, err := f.boolean("avoidBuggyIPs"); err != nil {
			p.problem(o, err)
		} else {
			pool.Spec.AvoidBuggyIPs = v
		}
		if sa, set, err := f.object("serviceAllocation"); err != nil {
			p.problem(o, err)
		} else if set {
			pool.Spec.ServiceAllocation = p.serviceAllocation(o, sa)
		}
		p.dropRest(o, f, "spec.")
		out.byName[o.GetName()] = pool
		out.labels[o.GetName()] = pool.Labels
		p.IPPools = append(p.IPPools, pool)
	}
	p.overlaps(out.ranges)
	return out
}

// overlaps reports every address that two pools claim: MetalLB refuses
// such a configuration, and Herald would give the shared addresses to the
// older pool, which a migration cannot know.
func (p *Plan) overlaps(ranges []poolRange) {
	rs := slices.Clone(ranges)
	slices.SortFunc(rs, func(a, b poolRange) int { return cmp.Or(a.from.Compare(b.from), a.to.Compare(b.to)) })
	for i := range rs {
		for j := i + 1; j < len(rs) && rs[j].from.Compare(rs[i].to) <= 0; j++ {
			if rs[i].pool == rs[j].pool {
				p.Problems = append(p.Problems, fmt.Sprintf("IPAddressPool %s lists %s more than once (its entries overlap)", rs[i].pool, rs[j].from))
				continue
			}
			first, last := rs[j].from, minAddr(rs[i].to, rs[j].to)
			p.Problems = append(p.Problems, fmt.Sprintf("addresses %s-%s are claimed by two MetalLB pools, %s and %s: make them disjoint in MetalLB first (a migration cannot tell which pool the Services' addresses should count in)", first, last, rs[i].pool, rs[j].pool))
		}
	}
}

func minAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) <= 0 {
		return a
	}
	return b
}

type addrRange struct{ from, to netip.Addr }

// normalizeBlock turns a MetalLB address entry (a CIDR, possibly with host
// bits, or a range first-last, possibly with spaces) into Herald's form.
func normalizeBlock(s string) (norm string, r addrRange, note string, err error) {
	t := strings.TrimSpace(s)
	if pfx, perr := netip.ParsePrefix(t); perr == nil {
		if pfx.Masked() != pfx {
			note = fmt.Sprintf("address entry %q written as %s (the same addresses: MetalLB ignores the host bits)", s, pfx.Masked())
		}
		t = pfx.Masked().String()
	} else if first, last, ok := strings.Cut(t, "-"); ok {
		t = strings.TrimSpace(first) + "-" + strings.TrimSpace(last)
	}
	rng, err := config.ParseAddressBlock(t)
	if err != nil {
		return "", addrRange{}, "", fmt.Errorf("address entry %q: %w", s, err)
	}
	if strings.Contains(t, "-") {
		t = rng.From().String() + "-" + rng.To().String()
	}
	return t, addrRange{rng.From(), rng.To()}, note, nil
}

func (p *Plan) serviceAllocation(o *unstructured.Unstructured, f *fields) *v1alpha1.ServiceAllocation {
	sa := &v1alpha1.ServiceAllocation{}
	if v, set, err := f.integer("priority"); err != nil {
		p.problem(o, err)
	} else if set {
		sa.Priority = ptr.To(int32(v))
	}
	if v, _, err := f.strings("namespaces"); err != nil {
		p.problem(o, err)
	} else {
		sa.Namespaces = v
	}
	if sel, ok := p.oneSelector(o, f, "namespaceSelectors", "spec.serviceAllocation.namespaceSelectors", "Herald's pool takes one namespaceSelector: write the namespaces' common label as one selector, or list the namespaces"); ok {
		sa.NamespaceSelector = sel
	}
	if sel, ok := p.oneSelector(o, f, "serviceSelectors", "spec.serviceAllocation.serviceSelectors", "Herald's pool takes one serviceSelector: label the Services so that one selector matches them"); ok {
		sa.ServiceSelector = sel
	}
	p.dropRest(o, f, "spec.serviceAllocation.")
	return sa
}

// oneSelector reads a list of label selectors that Herald takes as one:
// carried when the list has one entry, dropped with reason when it has more.
func (p *Plan) oneSelector(o *unstructured.Unstructured, f *fields, key, path, reason string) (*metav1.LabelSelector, bool) {
	sels, set, err := p.selectors(o, f, key)
	if !set || err != nil || len(sels) == 0 {
		return nil, false
	}
	if len(sels) > 1 {
		p.drop(o, path, sels, reason)
		return nil, false
	}
	return &sels[0], true
}

func (p *Plan) selectors(o *unstructured.Unstructured, f *fields, key string) ([]metav1.LabelSelector, bool, error) {
	raw, set, err := f.list(key)
	if err != nil || !set {
		if err != nil {
			p.problem(o, err)
		}
		return nil, set, err
	}
	var out []metav1.LabelSelector
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			err := fmt.Errorf("spec.%s: want label selectors, got %v", key, r)
			p.problem(o, err)
			return nil, true, err
		}
		var s metav1.LabelSelector
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(m, &s, true); err != nil {
			err = fmt.Errorf("spec.%s: %w", key, err)
			p.problem(o, err)
			return nil, true, err
		}
		if _, err := metav1.LabelSelectorAsSelector(&s); err != nil {
			err = fmt.Errorf("spec.%s: %w", key, err)
			p.problem(o, err)
			return nil, true, err
		}
		out = append(out, s)
	}
	return out, true, nil
}

// poolSelection converts ipAddressPools and ipAddressPoolSelectors. Herald
// takes either a list of names or one selector: one selector alone is
// carried as it is; anything else is resolved to the names of the pools it
// selects today (and a note says that a pool labelled later is not picked
// up). Neither set selects every pool, in both.
func (p *Plan) poolSelection(o *unstructured.Unstructured, f *fields, pools metallbPools) (names []string, sel *metav1.LabelSelector) {
	names, _, err := f.strings("ipAddressPools")
	if err != nil {
		p.problem(o, err)
	}
	sels, _, _ := p.selectors(o, f, "ipAddressPoolSelectors")
	if len(sels) == 1 && len(names) == 0 {
		return nil, &sels[0]
	}
	if len(sels) == 0 {
		return names, nil
	}
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	for _, s := range sels {
		ls, _ := metav1.LabelSelectorAsSelector(&s)
		for name, l := range pools.labels {
			if ls.Matches(labels.Set(l)) {
				set[name] = true
			}
		}
	}
	resolved := make([]string, 0, len(set))
	for n := range set {
		resolved = append(resolved, n)
	}
	slices.Sort(resolved)
	p.Notes = append(p.Notes, fmt.Sprintf("%s: ipAddressPoolSelectors resolved to the pools they select now (%s), since Herald takes either names or one selector; a pool labelled later is not picked up", ref(o), strings.Join(resolved, ", ")))
	if len(resolved) == 0 {
		p.problem(o, fmt.Errorf("its pool selectors select no pool: Herald would read an empty list as every pool"))
	}
	return resolved, nil
}

func (p *Plan) convertL2Advertisement(o *unstructured.Unstructured, pools metallbPools) {
	f := spec(o)
	adv := &v1alpha1.L2Advertisement{TypeMeta: typeMeta("L2Advertisement"), ObjectMeta: objectMeta(o, "metallb")}
	adv.Spec.IPPools, adv.Spec.IPPoolSelector = p.poolSelection(o, f, pools)
	if sels, _, err := p.selectors(o, f, "nodeSelectors"); err == nil {
		adv.Spec.NodeSelectors = sels
	}
	if v, _, err := f.strings("interfaces"); err != nil {
		p.problem(o, err)
	} else {
		adv.Spec.Interfaces = v
	}
	p.dropRest(o, f, "spec.")
	p.L2Advertisements = append(p.L2Advertisements, adv)
}

// communityAliases reads the Community resources: alias name -> value.
func (p *Plan) communityAliases(objs []*unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	for _, o := range objs {
		f := spec(o)
		list, _, err := f.list("communities")
		if err != nil {
			p.problem(o, err)
			continue
		}
		for i, e := range list {
			m, ok := e.(map[string]any)
			if !ok {
				p.problem(o, fmt.Errorf("spec.communities[%d]: want {name, value}", i))
				continue
			}
			ef := &fields{m: m}
			name, _, err1 := ef.str("name")
			value, _, err2 := ef.str("value")
			if err1 != nil || err2 != nil || name == "" || value == "" {
				p.problem(o, fmt.Errorf("spec.communities[%d]: want a name and a value", i))
				continue
			}
			out[name] = value
			p.dropRest(o, ef, fmt.Sprintf("spec.communities[%d].", i))
		}
		p.dropRest(o, f, "spec.")
		p.Notes = append(p.Notes, fmt.Sprintf("%s: its aliases are written out as values in the BGPAdvertisements that use them (Herald has no Community resource)", ref(o)))
	}
	return out
}

// community converts one MetalLB community (value, large:a:b:c, or alias).
func community(s string, aliases map[string]string) (std, large string, err error) {
	v := s
	if a, ok := aliases[s]; ok {
		v = a
	}
	if rest, ok := strings.CutPrefix(v, "large:"); ok {
		if _, err := config.ParseLargeCommunity(rest); err != nil {
			return "", "", fmt.Errorf("community %q: %w", s, err)
		}
		return "", rest, nil
	}
	if _, err := config.ParseCommunity(v); err != nil {
		return "", "", fmt.Errorf("community %q is neither asn:value, large:a:b:c nor a Community alias: %w", s, err)
	}
	return v, "", nil
}

func (p *Plan) convertBGPAdvertisement(o *unstructured.Unstructured, pools metallbPools, aliases map[string]string) {
	f := spec(o)
	adv := &v1alpha1.BGPAdvertisement{TypeMeta: typeMeta("BGPAdvertisement"), ObjectMeta: objectMeta(o, "metallb")}
	adv.Spec.IPPools, adv.Spec.IPPoolSelector = p.poolSelection(o, f, pools)
	if sels, _, err := p.selectors(o, f, "nodeSelectors"); err == nil {
		adv.Spec.NodeSelectors = sels
	}
	if v, _, err := f.strings("peers"); err != nil {
		p.problem(o, err)
	} else {
		adv.Spec.Peers = v
	}
	for _, k := range []struct {
		key string
		dst **int32
		max int64
	}{{"aggregationLength", &adv.Spec.AggregationLength, 32}, {"aggregationLengthV6", &adv.Spec.AggregationLengthV6, 128}} {
		v, set, err := f.integer(k.key)
		switch {
		case err != nil:
			p.problem(o, err)
		case set && (v < 0 || v > k.max):
			p.problem(o, fmt.Errorf("spec.%s %d is out of range 0-%d", k.key, v, k.max))
		case set:
			*k.dst = ptr.To(int32(v))
		}
	}
	if v, set, err := f.integer("localPref"); err != nil {
		p.problem(o, err)
	} else if set {
		adv.Spec.LocalPref = ptr.To(v)
	}
	if cs, _, err := f.strings("communities"); err != nil {
		p.problem(o, err)
	} else {
		for _, c := range cs {
			std, large, err := community(c, aliases)
			switch {
			case err != nil:
				p.problem(o, err)
			case large != "":
				adv.Spec.LargeCommunities = append(adv.Spec.LargeCommunities, large)
			default:
				adv.Spec.Communities = append(adv.Spec.Communities, std)
			}
		}
	}
	p.dropRest(o, f, "spec.")
	p.BGPAdvertisements = append(p.BGPAdvertisements, adv)
}

// bfdSettings is a BFDProfile converted, with the object it came from.
type bfdSettings struct {
	settings *v1alpha1.BFDSettings
}

func (p *Plan) bfdProfiles(objs []*unstructured.Unstructured) map[string]bfdSettings {
	out := map[string]bfdSettings{}
	for _, o := range objs {
		f := spec(o)
		s := &v1alpha1.BFDSettings{}
		for _, k := range []struct {
			key string
			dst **metav1.Duration
		}{{"receiveInterval", &s.MinRx}, {"transmitInterval", &s.MinTx}} {
			v, set, err := f.integer(k.key)
			switch {
			case err != nil:
				p.problem(o, err)
			case set && (v < 10 || v > 60000):
				p.problem(o, fmt.Errorf("spec.%s %d ms: Herald's BFD takes 10 ms to 60 s", k.key, v))
			case set:
				*k.dst = &metav1.Duration{Duration: time.Duration(v) * time.Millisecond}
			}
		}
		if v, set, err := f.integer("detectMultiplier"); err != nil {
			p.problem(o, err)
		} else if set {
			if v < 2 || v > 255 {
				p.problem(o, fmt.Errorf("spec.detectMultiplier %d: Herald's BFD takes 2 to 255", v))
			} else {
				s.Multiplier = ptr.To(int32(v))
			}
		}
		p.dropRest(o, f, "spec.")
		out[o.GetName()] = bfdSettings{settings: s}
	}
	return out
}

func (p *Plan) convertBGPPeer(o *unstructured.Unstructured, bfd map[string]bfdSettings) {
	f := spec(o)
	peer := &v1alpha1.BGPPeer{TypeMeta: typeMeta("BGPPeer"), ObjectMeta: objectMeta(o, "metallb")}
	s := &peer.Spec
	var err error
	var set bool
	// MetalLB's interface (unnumbered BGP) is Herald's interface.
	if s.Interface, _, err = f.str("interface"); err != nil {
		p.problem(o, err)
	}
	if s.PeerAddress, _, err = f.str("peerAddress"); err != nil {
		p.problem(o, err)
	} else if s.Interface != "" && s.PeerAddress != "" {
		p.problem(o, fmt.Errorf("spec.peerAddress %q and spec.interface %q are both set: Herald takes one", s.PeerAddress, s.Interface))
	} else if _, perr := netip.ParseAddr(s.PeerAddress); perr != nil && s.Interface == "" {
		p.problem(o, fmt.Errorf("spec.peerAddress %q is not an IP address (Herald needs one, or spec.interface)", s.PeerAddress))
	}
	if s.SourceAddress, _, err = f.str("sourceAddress"); err != nil {
		p.problem(o, err)
	}
	if s.MyASN, set, err = f.integer("myASN"); err != nil || !set {
		p.problem(o, cmp.Or(err, fmt.Errorf("spec.myASN is not set")))
	}
	var peerASN int64
	if peerASN, set, err = f.integer("peerASN"); err != nil {
		p.problem(o, err)
	}
	dyn, dynSet, err := f.str("dynamicASN")
	switch {
	case err != nil:
		p.problem(o, err)
	case set && peerASN != 0:
		s.PeerASN = peerASN
		if dynSet {
			p.drop(o, "spec.dynamicASN", dyn, "ignored, as MetalLB does when peerASN is set")
		}
	case dynSet && dyn == "internal":
		s.PeerASN = s.MyASN
		p.Notes = append(p.Notes, fmt.Sprintf("%s: dynamicASN internal written as peerASN %d (myASN: an iBGP session, as MetalLB makes it)", ref(o), s.MyASN))
	case dynSet:
		p.drop(o, "spec.dynamicASN", dyn, "Herald has no dynamic ASN: set peerASN to the router's AS number")
		p.problem(o, fmt.Errorf("spec.dynamicASN %q: Herald needs the router's AS number in peerASN", dyn))
	default:
		p.problem(o, fmt.Errorf("spec.peerASN is not set"))
	}
	if v, set, err := f.boolean("dualStackAddressFamily"); err != nil {
		p.problem(o, err)
	} else if set && !v {
		p.Notes = append(p.Notes, fmt.Sprintf("%s: dualStackAddressFamily is false, but Herald offers IPv4 and IPv6 unicast on every session: an IPv6 address is advertised over an IPv4 session too when the router accepts that family", ref(o)))
	}
	if v, set, err := f.integer("peerPort"); err != nil {
		p.problem(o, err)
	} else if set {
		s.Port = ptr.To(int32(v))
	}
	for _, k := range []struct {
		key string
		dst **metav1.Duration
	}{{"holdTime", &s.HoldTime}, {"keepaliveTime", &s.KeepaliveTime}} {
		v, set, err := f.str(k.key)
		if err != nil {
			p.problem(o, err)
			continue
		}
		if !set {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			p.problem(o, fmt.Errorf("spec.%s %q: %w", k.key, v, err))
			continue
		}
		*k.dst = &metav1.Duration{Duration: d}
	}
	if v, _, err := f.str("password"); err != nil {
		p.problem(o, err)
	} else if v != "" {
		s.Password = v
		p.Notes = append(p.Notes, fmt.Sprintf("%s: its inline password is carried inline (deprecated in Herald: move it to a Secret in Herald's namespace and use passwordSecretRef)", ref(o)))
	}
	if ps, set, err := f.object("passwordSecret"); err != nil {
		p.problem(o, err)
	} else if set {
		name, _, _ := ps.str("name")
		ns, _, _ := ps.str("namespace")
		s.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: name, Key: "password"}
		p.Notes = append(p.Notes, fmt.Sprintf("%s: copy Secret %s/%s (key password) into Herald's namespace (herald-system) before starting Herald: Herald reads BGP password Secrets only there", ref(o), cmp.Or(ns, o.GetNamespace()), name))
		p.dropRest(o, ps, "spec.passwordSecret.")
	}
	if v, _, err := f.boolean("ebgpMultiHop"); err != nil {
		p.problem(o, err)
	} else if v {
		s.EBGPMultihop = true
	}
	if sels, _, err := p.selectors(o, f, "nodeSelectors"); err == nil {
		s.NodeSelectors = sels
	}
	if v, set, err := f.boolean("enableGracefulRestart"); err != nil {
		p.problem(o, err)
	} else if set && v {
		s.GracefulRestart = &v1alpha1.GracefulRestart{Enabled: ptr.To(true)}
	}
	if name, set, err := f.str("bfdProfile"); err != nil {
		p.problem(o, err)
	} else if set && name != "" {
		b, ok := bfd[name]
		switch {
		case !ok:
			p.problem(o, fmt.Errorf("spec.bfdProfile names BFDProfile %q, which does not exist", name))
		case s.Interface != "":
			// Herald's schema refuses bfd with interface (and
			// ebgpMultihop): writing it would fail the whole apply.
			p.drop(o, "spec.bfdProfile", name, "Herald's BFD (GoBGP v4.9.0) does not run over the IPv6 link-local addresses of an unnumbered session (spec.interface), and Herald's schema refuses bfd with interface: the BGPPeer is written without BFD, so the router detects a failure of a node by the hold time only (lower spec.holdTime to shorten that)")
		case s.EBGPMultihop:
			p.drop(o, "spec.bfdProfile", name, "Herald's BFD is single-hop only (GoBGP v4.9.0 has no multihop BFD, RFC 5883), and Herald's schema refuses bfd with ebgpMultihop: the BGPPeer is written without BFD, so the router detects a failure of a node by the hold time only (lower spec.holdTime to shorten that)")
		default:
			c := *b.settings
			c.Enabled = ptr.To(true)
			s.BFD = &c
		}
	}
	p.dropRest(o, f, "spec.")
	p.BGPPeers = append(p.BGPPeers, peer)
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: kind}
}

func (p *Plan) sort() {
	byName := func(a, b metav1.Object) int { return strings.Compare(a.GetName(), b.GetName()) }
	slices.SortFunc(p.IPPools, func(a, b *v1alpha1.IPPool) int { return byName(a, b) })
	slices.SortFunc(p.L2Advertisements, func(a, b *v1alpha1.L2Advertisement) int { return byName(a, b) })
	slices.SortFunc(p.BGPAdvertisements, func(a, b *v1alpha1.BGPAdvertisement) int { return byName(a, b) })
	slices.SortFunc(p.BGPPeers, func(a, b *v1alpha1.BGPPeer) int { return byName(a, b) })
	slices.SortFunc(p.Services, func(a, b ServicePlan) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	slices.SortStableFunc(p.Dropped, func(a, b Dropped) int {
		return cmp.Or(strings.Compare(a.Object, b.Object), strings.Compare(a.Field, b.Field))
	})
	slices.Sort(p.Problems)
	p.Problems = slices.Compact(p.Problems)
}
