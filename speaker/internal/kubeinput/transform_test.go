package kubeinput

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
)

func TestTransformsKeepWhatTheSpeakerReads(t *testing.T) {
	tf := TransformObject(NewInterner())
	managed := []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	class := "herald.dev/lb"
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1", ResourceVersion: "7",
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}, ManagedFields: managed},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, ExternalIPs: []string{"203.0.113.5"}, LoadBalancerClass: &class,
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal, HealthCheckNodePort: 30001,
			Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "web"},
		},
		Status: corev1.ServiceStatus{
			LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "198.51.100.130", Hostname: "x"}, {Hostname: "only-name"}}},
			Conditions: []metav1.Condition{
				{Type: "herald.dev/AddressAllocated", Status: metav1.ConditionTrue, Message: "Allocated ..."},
				{Type: config.ConditionExternalIPsAccepted, Status: metav1.ConditionTrue, Message: `Accepted 203.0.113.5 from IPPool "x".`, Reason: "Accepted"},
			},
		},
	}
	before := svc.DeepCopy()
	got, err := tf(svc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, svc); diff != "" {
		t.Errorf("transform changed its input (-before +after):\n%s", diff)
	}
	want := &CachedService{
		objectMeta: objectMeta{Name: "web", Namespace: "default", ResourceVersion: "7"}, UID: "u1",
		Class: class, HasClass: true, Local: true, HealthCheckNodePort: 30001,
		LoadBalancer: []netip.Addr{netip.MustParseAddr("198.51.100.130")}, ExternalIPs: []netip.Addr{netip.MustParseAddr("203.0.113.5")},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(CachedService{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("cached Service (-want +got):\n%s", diff)
	}
	// Every address claimed for the Service, either way.
	claimAll := func(a netip.Addr) (config.Claim, bool) {
		return config.Claim{Addr: a, Pool: "p", Holders: []config.ClaimHolder{{UID: "u1"}, {UID: "u1", ExternalIP: true}}}, true
	}
	holdsAll := func(a netip.Addr, uid string, externalIP bool) (string, bool) { return "p", uid == "u1" }
	cs := got.(*CachedService)
	if diff := cmp.Diff(config.ClaimedAddresses(before, claimAll), config.ClaimedAddressesOf(string(cs.UID), cs.LoadBalancer, cs.ExternalIPs, holdsAll), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("the cached Service announces other addresses (-full +cached):\n%s", diff)
	}
	if k, err := cache.MetaNamespaceKeyFunc(got); err != nil || k != "default/web" || cs.GetUID() != "u1" || cs.GetResourceVersion() != "7" {
		t.Errorf("the cached Service is keyed %q (%v), UID %q, resourceVersion %q", k, err, cs.GetUID(), cs.GetResourceVersion())
	}
	if again, _ := tf(got); again != got {
		t.Errorf("transforming a cached Service again made a new object")
	}

	plain, _ := tf(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default", UID: "u2"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 5432}}}})
	if diff := cmp.Diff(&CachedService{objectMeta: objectMeta{Name: "db", Namespace: "default"}, UID: "u2"}, plain, cmp.AllowUnexported(CachedService{})); diff != "" {
		t.Errorf("a Service without addresses is not reduced to its name (-want +got):\n%s", diff)
	}

	node := "node1"
	yes, no := true, false
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "default", ResourceVersion: "8", Labels: map[string]string{discoveryv1.LabelServiceName: "web", "other": "x"}, ManagedFields: managed},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"203.0.113.2"}, NodeName: &node, Conditions: discoveryv1.EndpointConditions{Ready: &no, Serving: &yes, Terminating: &yes}, TargetRef: &corev1.ObjectReference{Name: "pod"}},
			{Addresses: []string{"203.0.113.3"}},
		},
		Ports: []discoveryv1.EndpointPort{{}},
	}
	gotSlice, _ := tf(slice)
	cached := gotSlice.(*CachedSlice)
	if diff := cmp.Diff(EndpointsFromSlices([]*discoveryv1.EndpointSlice{slice}, ""), endpointsOf([]*CachedSlice{cached})); diff != "" {
		t.Errorf("the cached EndpointSlice reads differently (-full +cached):\n%s", diff)
	}
	if k, ok := cached.ServiceKey(); !ok || k != (decide.ServiceKey{Namespace: "default", Name: "web"}) || cached.AddressType != discoveryv1.AddressTypeIPv4 || cached.GetResourceVersion() != "8" {
		t.Errorf("cached EndpointSlice: %+v", cached)
	}

	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node1", Labels: map[string]string{corev1.LabelNodeExcludeBalancers: ""}, ManagedFields: managed},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: TaintToBeDeletedByClusterAutoscaler}, {Key: "other"}}},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue}, {Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.51.100.11"}, {Type: corev1.NodeHostName, Address: "node1"}},
			Images:     []corev1.ContainerImage{{Names: []string{"big"}}},
		},
	}
	gotNode, _ := tf(n)
	if diff := cmp.Diff(NodeStateFromNode(n, true), NodeStateFromNode(gotNode.(*corev1.Node), true)); diff != "" {
		t.Errorf("the trimmed Node reads differently (-full +trimmed):\n%s", diff)
	}
	if a, ok := NodeAddress(gotNode.(*corev1.Node)); !ok || a.String() != "198.51.100.11" {
		t.Errorf("trimmed Node address %v %v", a, ok)
	}
	if tn := gotNode.(*corev1.Node); len(tn.Status.Images) != 0 || len(tn.Status.Conditions) != 1 || len(tn.Spec.Taints) != 1 {
		t.Errorf("trimmed Node keeps too much: %+v", tn)
	}

	st := &v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: "node1"}, Status: v1alpha1.SpeakerStatusStatus{
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady}}, Layer2: []v1alpha1.Layer2Announcement{{Address: "198.51.100.130"}},
	}}
	gotSt, _ := tf(st)
	if s := gotSt.(*v1alpha1.SpeakerStatus); len(s.Status.Layer2) != 0 || len(s.Status.Conditions) != 1 {
		t.Errorf("trimmed SpeakerStatus: %+v", s.Status)
	}

	claim := &v1alpha1.AddressClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "2001-db8--7", ResourceVersion: "9", ManagedFields: managed, Annotations: map[string]string{"a": "b"}},
		Spec: v1alpha1.AddressClaimSpec{Address: "2001:db8::7", Family: "IPv6", Pool: "lan", HolderCount: 2, Holders: []v1alpha1.AddressHolder{
			{Namespace: "shop", Name: "web", UID: "u1", As: v1alpha1.HolderLoadBalancer, SharingKey: "k", BackendKey: "b", Ports: []v1alpha1.HolderPort{{Protocol: "TCP", Port: 80}}},
			{Namespace: "shop", Name: "web-udp", UID: "u2", As: v1alpha1.HolderExternalIP},
		}},
	}
	beforeClaim := claim.DeepCopy()
	gotClaim, _ := tf(claim)
	if diff := cmp.Diff(beforeClaim, claim); diff != "" {
		t.Errorf("transform changed the AddressClaim (-before +after):\n%s", diff)
	}
	wantClaim := &CachedClaim{
		objectMeta: objectMeta{Name: "2001-db8--7", ResourceVersion: "9"},
		Addr:       netip.MustParseAddr("2001:db8::7"), Pool: "lan",
		Holders: []ClaimHolder{{Namespace: "shop", Name: "web", UID: "u1"}, {Namespace: "shop", Name: "web-udp", UID: "u2", ExternalIP: true}},
	}
	if diff := cmp.Diff(wantClaim, gotClaim, cmp.AllowUnexported(CachedClaim{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("cached AddressClaim (-want +got):\n%s", diff)
	}
	full, errFull := config.ClaimOf(claim)
	c := gotClaim.(*CachedClaim)
	if errFull != nil || c.Err != nil || full.Addr != c.Addr || full.Pool != c.Pool ||
		!c.holds("u1", false) || !c.holds("u2", true) || c.holds("u1", true) {
		t.Errorf("the cached AddressClaim reads differently: %+v, full %+v (%v)", c, full, errFull)
	}
	bad := claim.DeepCopy()
	bad.Spec.Address = "2001:db8::8" // named for ::7
	if c := cacheClaim(bad); c.Err == nil || c.holds("u1", false) || len(c.Holders) != 2 {
		t.Errorf("an invalid claim is cached as %+v: want its error, its holders, and no address held", c)
	}
}

// TestEndpointConditions: the cached conditions read as the API defines
// them and as kube-proxy reads them: a nil ready or serving counts as true,
// a nil terminating as false. (Before, a nil serving counted as ready, so a
// terminating endpoint without a serving condition, which kube-proxy still
// forwards to when no endpoint is ready, was not counted as serving.)
func TestEndpointConditions(t *testing.T) {
	yes, no := true, false
	for _, tt := range []struct {
		name string
		in   discoveryv1.EndpointConditions
		want decide.Endpoint
	}{
		{"all unset", discoveryv1.EndpointConditions{}, decide.Endpoint{Ready: true, Serving: true}},
		{"not ready, serving unset", discoveryv1.EndpointConditions{Ready: &no}, decide.Endpoint{Serving: true}},
		{"terminating, serving unset", discoveryv1.EndpointConditions{Ready: &no, Terminating: &yes}, decide.Endpoint{Serving: true, Terminating: true}},
		{"not ready, not serving, terminating", discoveryv1.EndpointConditions{Ready: &no, Serving: &no, Terminating: &yes}, decide.Endpoint{Terminating: true}},
		{"terminating and serving", discoveryv1.EndpointConditions{Ready: &no, Serving: &yes, Terminating: &yes}, decide.Endpoint{Serving: true, Terminating: true}},
		{"ready, not serving", discoveryv1.EndpointConditions{Ready: &yes, Serving: &no, Terminating: &no}, decide.Endpoint{Ready: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := endpointConditions(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestInternerForgetsGoneNodes: the interner keeps one name per node, and
// forgets the nodes that go.
func TestInternerForgetsGoneNodes(t *testing.T) {
	in := NewInterner()
	for _, n := range []string{"n1", "n2", "n3", "n1"} {
		in.intern(n)
	}
	in.Forget(func(name string) bool { return name != "n1" })
	if _, ok := in.strs["n1"]; len(in.strs) != 1 || !ok {
		t.Errorf("after n2 and n3 went, the interner holds %v, want n1 only", in.strs)
	}
}
