package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/ipam"
)

// Intent is what a Service asks of Herald, translated from its spec and
// annotations by Desired. A nil part asks for nothing: whatever the Service
// holds of that kind is to be released.
type Intent struct {
	// LoadBalancer is set for a Service of type LoadBalancer that this
	// controller serves (see Serves).
	LoadBalancer *Want
	// ExternalIPs is set when a Service this controller serves lists
	// spec.externalIPs or asks for one to be allocated.
	ExternalIPs *Want
}

// Want is one kind of allocation a Service asks for.
type Want struct {
	// Request is the IPAM request. Its Owner, Subject and Kind are always set.
	Request ipam.Request
	// Allocate, for Kind ExternalIP, says that spec.externalIPs is empty and
	// the Service asks Herald to allocate an address and write it there.
	// Otherwise Request.Addresses are the addresses to claim.
	Allocate bool
	// Requested, for Kind ExternalIP, says that the Service carries the
	// allocate-external-ip annotation (its external IPs came, or will come,
	// from Herald rather than from the user).
	Requested bool
	// Refusal, when set, says that the Service's own input is invalid (an
	// annotation that does not parse, spec.loadBalancerIP disagreeing with
	// the annotation, an address of the wrong family...). Nothing is then
	// allocated or released: the Service keeps what it holds until the input
	// is fixed. Request is still filled as far as it could be.
	Refusal *Refusal
}

// Refusal is a decision not to allocate, with a stable reason and a message
// for the user.
type Refusal struct {
	Reason  string
	Message string
}

// Serves reports whether a controller serving loadBalancerClass class (""
// for Services without a class) handles svc. A Service that is not of type
// LoadBalancer has no class and is served by the controller without one.
func Serves(svc *corev1.Service, class string) bool {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return false
	}
	own := ""
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass != nil {
		own = *svc.Spec.LoadBalancerClass
	}
	return own == class
}

// Desired translates what svc asks for into IPAM requests, for a controller
// serving loadBalancerClass class. subject is the Service as pool admission
// sees it (config.Model.Subject). Desired is pure; its cost is linear in the
// size of svc's spec and annotations.
func Desired(svc *corev1.Service, subject ipam.Subject, class string) Intent {
	if !Serves(svc, class) {
		return Intent{}
	}
	owner := OwnerOf(svc)
	ann, annErr := config.ParseServiceAnnotations(svc.Annotations)
	var annRefusal *Refusal
	if annErr != nil {
		annRefusal = &Refusal{Reason: ReasonInvalidAnnotation, Message: annotationMessage(annErr)}
		// Another annotation's mistake freezes the Service's allocation, but
		// a valid sharing key and opt-in still describe what it holds: an
		// import from its status must not lose them and displace its sharers.
		ann.SharingKey, ann.SharingNamespaces = validAnnotation(svc, config.AnnotationSharingKey).SharingKey,
			validAnnotation(svc, config.AnnotationSharingCrossNamespace).SharingNamespaces
	}
	var sharing *ipam.Sharing
	if ann.SharingKey != "" {
		sharing = sharingOf(svc, ann)
	}
	families, requireAll := familiesOf(svc)

	var in Intent
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		w := &Want{Request: ipam.Request{
			Owner: owner, Subject: subject, Kind: ipam.LoadBalancer,
			Families: families, RequireAllFamilies: requireAll,
			Pool: ann.Pool, Sharing: sharing,
		}}
		switch {
		case annRefusal != nil:
			w.Refusal = annRefusal
		default:
			w.Request.Addresses, w.Refusal = requestedAddresses(svc, ann.Addresses, families)
		}
		in.LoadBalancer = w
	}

	if len(svc.Spec.ExternalIPs) > 0 || ann.ExternalIP.Requested || annRefusal != nil && hasExternalIPAnnotation(svc) {
		w := &Want{Request: ipam.Request{
			Owner: owner, Subject: subject, Kind: ipam.ExternalIP,
			Pool: ann.ExternalIP.Pool, Sharing: sharing,
		}, Requested: ann.ExternalIP.Requested}
		switch {
		case annRefusal != nil:
			w.Refusal = annRefusal
		case len(svc.Spec.ExternalIPs) == 0:
			w.Allocate = true
			w.Request.Families, w.Request.RequireAllFamilies = families, requireAll
		default:
			w.Request.Addresses, w.Request.Families, w.Refusal = externalIPsOf(svc.Spec.ExternalIPs)
		}
		in.ExternalIPs = w
	}
	return in
}

// OwnerOf returns the IPAM owner for svc.
func OwnerOf(svc *corev1.Service) ipam.Owner {
	return ipam.Owner{Namespace: svc.Namespace, Name: svc.Name, UID: string(svc.UID), Created: svc.CreationTimestamp.Time}
}

// validAnnotation parses svc's annotation name alone: the zero value when it
// is absent or invalid.
func validAnnotation(svc *corev1.Service, name string) config.ServiceAnnotations {
	v, ok := svc.Annotations[name]
	if !ok {
		return config.ServiceAnnotations{}
	}
	ann, _ := config.ParseServiceAnnotations(map[string]string{name: v})
	return ann
}

func hasExternalIPAnnotation(svc *corev1.Service) bool {
	_, ok := svc.Annotations[config.AnnotationAllocateExternalIP]
	return ok
}

// familiesOf returns the families a Service asks for, in its order, and
// whether it requires all of them (RequireDualStack). A Service without
// spec.ipFamilies (the apiserver always sets them for a Service with a
// cluster IP) asks for IPv4.
func familiesOf(svc *corev1.Service) ([]ipam.Family, bool) {
	var fams []ipam.Family
	for _, f := range svc.Spec.IPFamilies {
		var fam ipam.Family
		switch f {
		case corev1.IPv4Protocol:
			fam = ipam.IPv4
		case corev1.IPv6Protocol:
			fam = ipam.IPv6
		default:
			continue
		}
		if !slices.Contains(fams, fam) && len(fams) < 2 {
			fams = append(fams, fam)
		}
	}
	if len(fams) == 0 {
		fams = []ipam.Family{ipam.IPv4}
	}
	if p := svc.Spec.IPFamilyPolicy; p == nil || *p == corev1.IPFamilyPolicySingleStack {
		fams = fams[:1]
	}
	requireAll := svc.Spec.IPFamilyPolicy != nil && *svc.Spec.IPFamilyPolicy == corev1.IPFamilyPolicyRequireDualStack
	return fams, requireAll
}

// requestedAddresses merges the herald.dev/addresses annotation with
// spec.loadBalancerIP, which is honoured alone and must agree with the
// annotation when both are set, and checks the families.
func requestedAddresses(svc *corev1.Service, annotated []netip.Addr, families []ipam.Family) ([]netip.Addr, *Refusal) {
	addrs := slices.Clone(annotated)
	if lbIP := strings.TrimSpace(svc.Spec.LoadBalancerIP); lbIP != "" {
		ip, err := netip.ParseAddr(lbIP)
		if err != nil || ip.Zone() != "" || ip.IsUnspecified() {
			return nil, &Refusal{Reason: ReasonInvalidLoadBalancerIP,
				Message: fmt.Sprintf("spec.loadBalancerIP %q is not a usable IP address", svc.Spec.LoadBalancerIP)}
		}
		ip = ip.Unmap()
		switch {
		case len(addrs) == 0:
			addrs = []netip.Addr{ip}
		case !slices.Contains(addrs, ip):
			return nil, &Refusal{Reason: ReasonLoadBalancerIPMismatch, Message: fmt.Sprintf(
				"spec.loadBalancerIP %s is not among the addresses of annotation %s (%s): make them agree or remove one; nothing changes until then",
				ip, config.AnnotationAddresses, config.JoinAddrs(addrs))}
		}
	}
	for _, a := range addrs {
		if !slices.Contains(families, ipam.FamilyOf(a)) {
			return nil, &Refusal{Reason: ReasonWrongAddressFamily, Message: fmt.Sprintf(
				"requested address %s is %s, but the Service's ipFamilies/ipFamilyPolicy ask for %s",
				a, ipam.FamilyOf(a), familyWords(families))}
		}
	}
	return addrs, nil
}

// externalIPsOf parses spec.externalIPs into the addresses to claim, with
// their families in order. Herald claims at most one address per family.
func externalIPsOf(in []string) ([]netip.Addr, []ipam.Family, *Refusal) {
	var addrs []netip.Addr
	var fams []ipam.Family
	for _, s := range in {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || a.Zone() != "" || a.IsUnspecified() {
			return nil, nil, &Refusal{Reason: ReasonExternalIPInvalid,
				Message: fmt.Sprintf("spec.externalIPs entry %q is not a usable IP address; no external IP of this Service is claimed", s)}
		}
		a = a.Unmap()
		if slices.Contains(addrs, a) {
			continue
		}
		f := ipam.FamilyOf(a)
		if slices.Contains(fams, f) {
			return nil, nil, &Refusal{Reason: ReasonTooManyExternalIPs, Message: fmt.Sprintf(
				"spec.externalIPs lists more than one %s address; Herald claims at most one address per family for a Service, so none is claimed", f)}
		}
		addrs = append(addrs, a)
		fams = append(fams, f)
	}
	return addrs, fams, nil
}

// sharingOf returns a Service's sharing terms: its key and the other
// namespaces it lets share (herald.dev/sharing-cross-namespace; ipam matches
// keys across namespaces only when both Services allow each other's), its
// ports and, for externalTrafficPolicy Local, a key naming its backends (a
// hash of its selector; ipam compares it only between Services of one
// namespace), since an address can only be announced from nodes that run
// the backends of every Local Service sharing it.
func sharingOf(svc *corev1.Service, ann config.ServiceAnnotations) *ipam.Sharing {
	s := &ipam.Sharing{Key: ann.SharingKey, Namespaces: ann.SharingNamespaces}
	for _, p := range svc.Spec.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(corev1.ProtocolTCP)
		}
		s.Ports = append(s.Ports, ipam.PortProto{Protocol: proto, Port: p.Port})
	}
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		s.BackendKey = backendKey(svc.Spec.Selector)
	}
	return s
}

// backendKey names a selector's backends: a hash of the selector in its
// canonical (sorted) form, so equal selectors give equal keys.
func backendKey(selector map[string]string) string {
	sum := sha256.Sum256([]byte(labels.SelectorFromSet(selector).String()))
	return "selector:" + hex.EncodeToString(sum[:12])
}

// maxAnnotationProblem bounds what the message says about one annotation,
// which may quote a long value.
const maxAnnotationProblem = 200

// annotationMessage describes every invalid annotation of a parse error,
// each in at most maxAnnotationProblem bytes, so that all of them are named
// however long their values.
func annotationMessage(err error) string {
	parts := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	}
	msgs := make([]string, 0, len(parts))
	for _, p := range parts {
		msg := strings.TrimPrefix(p.Error(), "config: ")
		if len(msg) > maxAnnotationProblem {
			// Keep the head (which annotation) and the tail (what is wrong).
			head, tail := maxAnnotationProblem/2, len(msg)-maxAnnotationProblem/2
			for head > 0 && !utf8.RuneStart(msg[head]) {
				head--
			}
			for tail < len(msg) && !utf8.RuneStart(msg[tail]) {
				tail++
			}
			msg = msg[:head] + " ... " + msg[tail:]
		}
		msgs = append(msgs, msg)
	}
	return strings.Join(msgs, "; ")
}

func familyWords(fams []ipam.Family) string {
	if len(fams) == 1 {
		return fams[0].String() + " only"
	}
	return fams[0].String() + " and " + fams[1].String()
}
