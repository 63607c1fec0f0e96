package speakerlab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/netlab"
)

// ServiceSpec describes a Service for CreateService.
type ServiceSpec struct {
	Name string
	// Local selects externalTrafficPolicy Local (default Cluster).
	Local bool
	// Addresses are claimed (in PoolOf's pool) and written to
	// status.loadBalancer.ingress, as the controller would.
	Addresses []netip.Addr
}

// PoolOf returns the pool the lab claims addr in, as the controller would
// have allocated it: RoutedPoolName for an address of netlab.RoutedPoolV4,
// PoolName otherwise.
func PoolOf(addr netip.Addr) string {
	if netlab.RoutedPoolV4.Contains(addr) {
		return RoutedPoolName
	}
	return PoolName
}

// CreateService creates a Service of type LoadBalancer, claims its
// addresses and writes them to its ingress (SetIngress).
func (l *Lab) CreateService(ctx context.Context, spec ServiceSpec) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Namespace: Namespace},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			Ports:                         []corev1.ServicePort{{Name: "tcp", Port: ServicePort, TargetPort: intstr.FromInt32(ServicePort), Protocol: corev1.ProtocolTCP}},
			Selector:                      map[string]string{"app": spec.Name},
			ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicyCluster,
			AllocateLoadBalancerNodePorts: ptr(false),
		},
	}
	if spec.Local {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	var has4, has6 bool
	for _, a := range spec.Addresses {
		has4, has6 = has4 || a.Is4(), has6 || a.Is6()
	}
	switch {
	case has4 && has6:
		svc.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyRequireDualStack)
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	case has6:
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	}
	created, err := l.Kube.CoreV1().Services(Namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("speakerlab: create Service %s: %w", spec.Name, err)
	}
	return l.SetIngress(ctx, created, spec.Addresses)
}

// SetIngress writes svc's status.loadBalancer.ingress as the controller
// would under the AddressClaim contract: it claims each address for svc in
// PoolOf's pool first, then writes the status, then releases the claims of
// the addresses svc's status named before and no longer does. svc must
// carry its UID and the status it had.
func (l *Lab) SetIngress(ctx context.Context, svc *corev1.Service, addrs []netip.Addr) error {
	for _, a := range addrs {
		if err := netlab.WriteClaim(ctx, l.Herald, a, PoolOf(a), svc, v1alpha1.HolderLoadBalancer); err != nil {
			return fmt.Errorf("speakerlab: %w", err)
		}
	}
	old := config.LoadBalancerAddresses(svc)
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = nil
	for _, a := range addrs {
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: a.String(), IPMode: ptr(corev1.LoadBalancerIPModeVIP)})
	}
	if _, err := l.Kube.CoreV1().Services(Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("speakerlab: write ingress of Service %s: %w", svc.Name, err)
	}
	for _, a := range old {
		if !slices.Contains(addrs, a) {
			if err := netlab.ReleaseClaim(ctx, l.Herald, a, svc.Namespace, svc.Name, v1alpha1.HolderLoadBalancer); err != nil {
				return fmt.Errorf("speakerlab: %w", err)
			}
		}
	}
	return nil
}

// DeleteService deletes a Service, its EndpointSlices and its claims.
func (l *Lab) DeleteService(ctx context.Context, name string) error {
	svc, err := l.Kube.CoreV1().Services(Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("speakerlab: get Service %s: %w", name, err)
	}
	if err := ignoreNotFound(l.Kube.CoreV1().Services(Namespace).Delete(ctx, name, metav1.DeleteOptions{})); err != nil {
		return fmt.Errorf("speakerlab: delete Service %s: %w", name, err)
	}
	if err == nil {
		for _, a := range config.LoadBalancerAddresses(svc) {
			if err := netlab.ReleaseClaim(ctx, l.Herald, a, Namespace, name, ""); err != nil {
				return fmt.Errorf("speakerlab: %w", err)
			}
		}
	}
	for _, fam := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
		if err := ignoreNotFound(l.Kube.DiscoveryV1().EndpointSlices(Namespace).Delete(ctx, sliceName(name, fam), metav1.DeleteOptions{})); err != nil {
			return fmt.Errorf("speakerlab: delete EndpointSlice of %s: %w", name, err)
		}
	}
	return nil
}

// EndpointState is one endpoint for SetEndpoints.
type EndpointState struct {
	Node string
	// Terminating marks a pod being deleted that still serves.
	Terminating bool
	// NotReady marks a pod that is not ready.
	NotReady bool
}

// SetEndpoints replaces the Service's EndpointSlice of one family with one
// endpoint per entry, on the given nodes (a pod address from the node's pod
// range). No entries leaves an empty slice.
func (l *Lab) SetEndpoints(ctx context.Context, service string, family discoveryv1.AddressType, eps ...EndpointState) error {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: sliceName(service, family), Namespace: Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: "speakerlab"},
		},
		AddressType: family,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("tcp"), Port: ptr(int32(ServicePort)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for i, ep := range eps {
		n := l.nodeIndex(ep.Node)
		p4, p6 := netlab.NodePodCIDRs(n+1, len(l.Nodes))
		addr := p4.Addr()
		if family == discoveryv1.AddressTypeIPv6 {
			addr = p6.Addr()
		}
		for range i + 2 {
			addr = addr.Next()
		}
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{addr.String()},
			NodeName:  ptr(ep.Node),
			Conditions: discoveryv1.EndpointConditions{
				Ready:       ptr(!ep.NotReady && !ep.Terminating),
				Serving:     ptr(!ep.NotReady),
				Terminating: ptr(ep.Terminating),
			},
		})
	}
	api := l.Kube.DiscoveryV1().EndpointSlices(Namespace)
	old, err := api.Get(ctx, slice.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, slice, metav1.CreateOptions{})
	case err == nil:
		slice.ResourceVersion = old.ResourceVersion
		_, err = api.Update(ctx, slice, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("speakerlab: write EndpointSlice %s: %w", slice.Name, err)
	}
	return nil
}

func (l *Lab) nodeIndex(name string) int {
	for i, n := range l.Nodes {
		if n.Name == name {
			return i
		}
	}
	return 0
}

func sliceName(service string, family discoveryv1.AddressType) string {
	return service + "-" + strings.ToLower(string(family))
}

// SetNodeLabel sets (value non-nil) or removes a label of a Node.
func (l *Lab) SetNodeLabel(ctx context.Context, node, key string, value *string) error {
	n, err := l.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("speakerlab: get Node %s: %w", node, err)
	}
	if value == nil {
		delete(n.Labels, key)
	} else {
		n.Labels[key] = *value
	}
	if _, err := l.Kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("speakerlab: label Node %s: %w", node, err)
	}
	return nil
}

// SetNetworkUnavailable sets a Node's NetworkUnavailable condition.
func (l *Lab) SetNetworkUnavailable(ctx context.Context, node string, unavailable bool) error {
	n, err := l.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("speakerlab: get Node %s: %w", node, err)
	}
	status := corev1.ConditionFalse
	if unavailable {
		status = corev1.ConditionTrue
	}
	var conds []corev1.NodeCondition
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeNetworkUnavailable {
			conds = append(conds, c)
		}
	}
	n.Status.Conditions = append(conds, corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: status, Reason: "Test", LastTransitionTime: metav1.Now()})
	if _, err := l.Kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("speakerlab: write conditions of Node %s: %w", node, err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
