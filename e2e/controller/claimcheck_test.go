package controller

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
)

// The checks of this file read the cluster the way a speaker (or a user)
// would, and never ask the controller: what Services show, and what the
// AddressClaims record (docs/claims.md).

// eventuallyWithin is eventually with its own timeout, for waits that cover
// hundreds of Services on a shared machine.
func eventuallyWithin(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, desc := cond()
		last = desc
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not reached within %s; last: %s", what, timeout, last)
	}
}

// showing is one Service showing an address: in status.loadBalancer.ingress,
// or in spec.externalIPs with a True ExternalIPsAccepted condition.
type showing struct {
	svc        *corev1.Service
	externalIP bool
}

func (s showing) String() string {
	as := v1alpha1.HolderLoadBalancer
	if s.externalIP {
		as = v1alpha1.HolderExternalIP
	}
	return fmt.Sprintf("%s/%s (%s)", s.svc.Namespace, s.svc.Name, as)
}

// holderKey is what a claim must record of a showing: the Service's UID and
// how it holds the address.
func (s showing) holderKey() string {
	as := v1alpha1.HolderLoadBalancer
	if s.externalIP {
		as = v1alpha1.HolderExternalIP
	}
	return string(s.svc.UID) + "/" + as
}

// shownAddresses returns, for every address some Service shows, who shows it.
func shownAddresses(svcs []corev1.Service) map[netip.Addr][]showing {
	out := map[netip.Addr][]showing{}
	for i := range svcs {
		s := &svcs[i]
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			for _, a := range config.LoadBalancerAddresses(s) {
				out[a] = append(out[a], showing{svc: s})
			}
		}
		for _, a := range config.AcceptedExternalIPs(s) {
			out[a] = append(out[a], showing{svc: s, externalIP: true})
		}
	}
	return out
}

// mayShare reports whether two Services may show one address under
// Herald's sharing rules: the same namespace (tenancy is explicit), the
// same non-empty herald.dev/sharing-key, and no (protocol, port) in common.
// The tests' Services use externalTrafficPolicy Cluster, so backends do not
// matter.
func mayShare(a, b *corev1.Service) bool {
	if a.UID == b.UID {
		return true // one Service, both as load balancer and external IP
	}
	key := a.Annotations[config.AnnotationSharingKey]
	if a.Namespace != b.Namespace || key == "" || key != b.Annotations[config.AnnotationSharingKey] {
		return false
	}
	for _, p := range a.Spec.Ports {
		for _, q := range b.Spec.Ports {
			if p.Port == q.Port && p.Protocol == q.Protocol {
				return false
			}
		}
	}
	return true
}

// sharingViolations returns one line per address that two Services show
// although they may not share it. svcs must be one consistent list (one
// LIST call), so that a violation is one moment's truth.
func sharingViolations(svcs []corev1.Service) []string {
	var out []string
	for addr, shows := range shownAddresses(svcs) {
		for i := range shows {
			for j := i + 1; j < len(shows); j++ {
				if !mayShare(shows[i].svc, shows[j].svc) {
					out = append(out, fmt.Sprintf("%s is shown by %s and %s, which may not share it", addr, shows[i], shows[j]))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// incompatibleHolders returns one line per claim that lists two Services
// that may not share its address (docs/claims.md: more than one holder only
// when they may share it). A holder whose Service is not in svcs is skipped.
func incompatibleHolders(svcs []corev1.Service, claims []v1alpha1.AddressClaim) []string {
	byUID := map[string]*corev1.Service{}
	for i := range svcs {
		byUID[string(svcs[i].UID)] = &svcs[i]
	}
	var out []string
	for _, cl := range claims {
		for i, a := range cl.Spec.Holders {
			for _, b := range cl.Spec.Holders[i+1:] {
				sa, sb := byUID[a.UID], byUID[b.UID]
				if sa != nil && sb != nil && !mayShare(sa, sb) {
					out = append(out, fmt.Sprintf("AddressClaim %s lists %s/%s and %s/%s, which may not share it", cl.Name, a.Namespace, a.Name, b.Namespace, b.Name))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// claimProblems compares the AddressClaims with what Services show, as they
// must be at rest: every shown address has the claim named
// config.ClaimName(addr) for it, listing exactly the Services that show it
// (UID and how), and no claim exists for an address nobody shows.
func claimProblems(svcs []corev1.Service, claims []v1alpha1.AddressClaim) []string {
	var out []string
	byName := map[string]*v1alpha1.AddressClaim{}
	for i := range claims {
		byName[claims[i].Name] = &claims[i]
	}
	shown := shownAddresses(svcs)
	for addr, shows := range shown {
		name := config.ClaimName(addr)
		cl := byName[name]
		if cl == nil {
			out = append(out, fmt.Sprintf("%s (shown by %v) has no AddressClaim %s", addr, shows, name))
			continue
		}
		if cl.Spec.Address != addr.String() {
			out = append(out, fmt.Sprintf("AddressClaim %s claims %q, not %s", name, cl.Spec.Address, addr))
		}
		var want, got []string
		for _, s := range shows {
			want = append(want, s.holderKey())
		}
		for _, h := range cl.Spec.Holders {
			got = append(got, h.UID+"/"+h.As)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			out = append(out, fmt.Sprintf("AddressClaim %s lists %v; the Services showing %s are %v (%v)", name, describeHolders(cl), addr, shows, want))
		}
		if int(cl.Spec.HolderCount) != len(cl.Spec.Holders) {
			out = append(out, fmt.Sprintf("AddressClaim %s: holderCount %d for %d holders", name, cl.Spec.HolderCount, len(cl.Spec.Holders)))
		}
	}
	for _, cl := range claims {
		addr, err := config.ParseClaimName(cl.Name)
		if err != nil {
			out = append(out, fmt.Sprintf("AddressClaim %s: %v", cl.Name, err))
			continue
		}
		if _, ok := shown[addr]; !ok {
			out = append(out, fmt.Sprintf("AddressClaim %s lists %v, but no Service shows %s", cl.Name, describeHolders(&cl), addr))
		}
	}
	slices.Sort(out)
	return out
}

// unbacked returns the shown addresses whose claim does not list the
// Service that shows them. claims must be listed after svcs: a Service
// whose status changed in between may have been released legitimately, so
// callers confirm each finding with confirmUnbacked.
func unbacked(svcs []corev1.Service, claims []v1alpha1.AddressClaim) map[netip.Addr][]showing {
	holders := map[string][]string{}
	for _, cl := range claims {
		for _, h := range cl.Spec.Holders {
			holders[cl.Name] = append(holders[cl.Name], h.UID+"/"+h.As)
		}
	}
	out := map[netip.Addr][]showing{}
	for addr, shows := range shownAddresses(svcs) {
		for _, s := range shows {
			if !slices.Contains(holders[config.ClaimName(addr)], s.holderKey()) {
				out[addr] = append(out[addr], s)
			}
		}
	}
	return out
}

// confirmUnbacked keeps the findings of unbacked whose Service is unchanged
// since svcs were listed: it showed the address the whole time the claims
// were listed, and no claim listed it, which the contract forbids (claim
// before status, release after status).
func (e *env) confirmUnbacked(found map[netip.Addr][]showing) []string {
	var out []string
	for addr, shows := range found {
		for _, s := range shows {
			now, err := e.kube.CoreV1().Services(s.svc.Namespace).Get(context.Background(), s.svc.Name, metav1.GetOptions{})
			if err != nil || now.ResourceVersion != s.svc.ResourceVersion {
				continue // changed (or gone) meanwhile: not a proof
			}
			out = append(out, fmt.Sprintf("%s shows %s, but the AddressClaim %s does not list it", s, addr, config.ClaimName(addr)))
		}
	}
	slices.Sort(out)
	return out
}

func describeHolders(cl *v1alpha1.AddressClaim) []string {
	var out []string
	for _, h := range cl.Spec.Holders {
		out = append(out, fmt.Sprintf("%s/%s %s (%s)", h.Namespace, h.Name, h.UID, h.As))
	}
	return out
}

// allServices lists every Service of the cluster in one call.
func (e *env) allServices(t *testing.T) []corev1.Service {
	t.Helper()
	list, err := e.kube.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	return list.Items
}

// allClaims lists every AddressClaim in one call.
func (e *env) allClaims(t *testing.T) []v1alpha1.AddressClaim {
	t.Helper()
	list, err := e.herald.HeraldV1alpha1().AddressClaims().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list addressclaims: %v", err)
	}
	return list.Items
}

// waitClaimsMatch waits until the claims record exactly what Services show.
func (e *env) waitClaimsMatch(t *testing.T) {
	t.Helper()
	eventually(t, "AddressClaims record exactly what Services show", func() (bool, string) {
		p := claimProblems(e.allServices(t), e.allClaims(t))
		return len(p) == 0, strings.Join(p, "; ")
	})
}

// getClaim returns the claim of addr, or nil when there is none.
func (e *env) getClaim(t *testing.T, addr string) *v1alpha1.AddressClaim {
	t.Helper()
	cl, err := e.herald.HeraldV1alpha1().AddressClaims().Get(context.Background(), config.ClaimName(netip.MustParseAddr(addr)), metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return cl
}

// repairCounts returns the non-zero herald_controller_claim_repairs_total
// samples a replica exports, by action.
func (r *replica) repairCounts() (map[string]string, error) {
	_, body, err := r.get("/metrics")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, "herald_controller_claim_repairs_total{")
		if !ok {
			continue
		}
		labels, value, _ := strings.Cut(rest, "} ")
		if strings.TrimSpace(value) != "0" {
			out[labels] = strings.TrimSpace(value)
		}
	}
	return out, nil
}
