package cloudprovider

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kfake "k8s.io/client-go/kubernetes/fake"
	cloud "k8s.io/cloud-provider"
	"k8s.io/cloud-provider/api"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config"
	hfake "github.com/herald-dev/herald/config/generated/clientset/versioned/fake"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/ipam"
)

var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is a Provider started over fake clientsets, as Initialize starts
// it over real ones: informers, the import from the AddressClaims, and the
// claim repair.
type fixture struct {
	p      *Provider
	lb     cloud.LoadBalancer
	kube   *kfake.Clientset
	herald *hfake.Clientset
}

// readyProvider starts a Provider over fake clientsets holding objs (IPPools
// and AddressClaims go to Herald's, the rest to Kubernetes'), with the
// namespace "ns", and waits until it has imported the claims.
func readyProvider(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	p, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	kubeObjs := []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}}
	var heraldObjs []runtime.Object
	for _, o := range objs {
		switch o.(type) {
		case *v1alpha1.IPPool, *v1alpha1.AddressClaim:
			heraldObjs = append(heraldObjs, o)
		default:
			kubeObjs = append(kubeObjs, o)
		}
	}
	f := &fixture{p: p, kube: kfake.NewClientset(kubeObjs...), herald: hfake.NewSimpleClientset(heraldObjs...)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := p.startWith(ctx, f.kube, f.herald); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("the provider did not import within 10s: %v", p.Ready())
	}
	f.lb, _ = p.LoadBalancer()
	return f
}

// claim returns the AddressClaim of addr, nil when there is none.
func (f *fixture) claim(t *testing.T, addr string) *v1alpha1.AddressClaim {
	t.Helper()
	c, err := f.herald.HeraldV1alpha1().AddressClaims().Get(context.Background(), config.ClaimName(netip.MustParseAddr(addr)), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// holders returns the namespace/name of each holder of addr's claim, "none"
// when there is no claim.
func (f *fixture) holders(t *testing.T, addr string) []string {
	t.Helper()
	c := f.claim(t, addr)
	if c == nil {
		return []string{"none"}
	}
	var out []string
	for _, h := range c.Spec.Holders {
		out = append(out, h.Namespace+"/"+h.Name)
	}
	return out
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		ok, desc := cond()
		if ok {
			return
		}
		last = desc
	}
	t.Fatalf("%s: not within 10s; last: %s", what, last)
}

func pool(name string, addresses ...string) *v1alpha1.IPPool {
	return &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1, CreationTimestamp: metav1.NewTime(created)},
		Spec: v1alpha1.IPPoolSpec{Addresses: addresses}}
}

func service(name string, opts ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(created)},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeLoadBalancer,
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports:      []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// claimOf is the AddressClaim of addr held by svc as its load-balancer address.
func claimOf(addr, pool string, svc *corev1.Service) *v1alpha1.AddressClaim {
	a := netip.MustParseAddr(addr)
	fam := "IPv4"
	if a.Is6() {
		fam = "IPv6"
	}
	return &v1alpha1.AddressClaim{
		ObjectMeta: metav1.ObjectMeta{Name: config.ClaimName(a)},
		Spec: v1alpha1.AddressClaimSpec{Address: addr, Family: fam, Pool: pool, HolderCount: 1,
			Holders: []v1alpha1.AddressHolder{{Namespace: svc.Namespace, Name: svc.Name, UID: string(svc.UID), As: v1alpha1.HolderLoadBalancer}}},
	}
}

func ingress(addrs ...string) *corev1.LoadBalancerStatus {
	st := &corev1.LoadBalancerStatus{}
	for _, a := range addrs {
		st.Ingress = append(st.Ingress, corev1.LoadBalancerIngress{IP: a, IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)})
	}
	return st
}

// TestLoadBalancerSteps drives the LoadBalancer through a one-address pool
// step by step, as the upstream service controller would, and checks the
// AddressClaim of the address after each step.
func TestLoadBalancerSteps(t *testing.T) {
	s1, s2 := service("s1"), service("s2")
	f := readyProvider(t, pool("one", "203.0.113.10/32"), s1, s2)
	lb, ok := f.p.LoadBalancer()
	if !ok {
		t.Fatal("LoadBalancer() reports no load balancer")
	}
	ctx := context.Background()
	badIP := service("bad", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "not-an-ip" })
	classed := service("classed", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("other.example/lb") })

	// check runs a step's call and compares what it returned.
	type result struct {
		Status *corev1.LoadBalancerStatus
		Exists bool
		// Retry is the fixed retry delay when the error is an *api.RetryError.
		Retry time.Duration
		// Is lists the sentinels the error matches.
		Is      []string
		Refusal string
		Err     bool
	}
	describe := func(st *corev1.LoadBalancerStatus, exists bool, err error) result {
		r := result{Status: st, Exists: exists, Err: err != nil}
		var re *api.RetryError
		if errors.As(err, &re) {
			r.Retry = re.RetryAfter()
		}
		for name, s := range map[string]error{"ErrPoolExhausted": ipam.ErrPoolExhausted, "ImplementedElsewhere": cloud.ImplementedElsewhere} {
			if errors.Is(err, s) {
				r.Is = append(r.Is, name)
			}
		}
		var ref *controller.RefusalError
		if errors.As(err, &ref) {
			r.Refusal = ref.Reason
		}
		return r
	}
	ensure := func(s *corev1.Service) func() result {
		return func() result {
			st, err := lb.EnsureLoadBalancer(ctx, "cluster", s, nil)
			return describe(st, false, err)
		}
	}
	get := func(s *corev1.Service) func() result {
		return func() result { return describe(lb.GetLoadBalancer(ctx, "cluster", s)) }
	}
	const addr = "203.0.113.10"
	steps := []struct {
		name string
		call func() result
		want result
		// claim is who the claim of addr lists afterwards ("none": no claim).
		claim []string
	}{
		{"s1 has no load balancer yet", get(s1), result{}, []string{"none"}},
		{"ensure s1 gets the pool's address, claimed first", ensure(s1), result{Status: ingress(addr)}, []string{"ns/s1"}},
		{"ensure s1 again is idempotent", ensure(s1), result{Status: ingress(addr)}, []string{"ns/s1"}},
		{"get s1 reports it", get(s1), result{Status: ingress(addr), Exists: true}, []string{"ns/s1"}},
		{"s2 waits: pool exhausted, fixed retry", ensure(s2), result{Retry: DefaultWaitingRetry, Is: []string{"ErrPoolExhausted"}, Err: true}, []string{"ns/s1"}},
		{"update s2 reports the same wait", func() result {
			return describe(nil, false, lb.UpdateLoadBalancer(ctx, "cluster", s2, nil))
		}, result{Retry: DefaultWaitingRetry, Is: []string{"ErrPoolExhausted"}, Err: true}, []string{"ns/s1"}},
		{"delete s1: its claim goes", func() result {
			return describe(nil, false, lb.EnsureLoadBalancerDeleted(ctx, "cluster", s1))
		}, result{}, []string{"none"}},
		{"deleting s1 again succeeds", func() result {
			return describe(nil, false, lb.EnsureLoadBalancerDeleted(ctx, "cluster", s1))
		}, result{}, []string{"none"}},
		{"s1 is gone", get(s1), result{}, []string{"none"}},
		{"s2 gets the freed address", ensure(s2), result{Status: ingress(addr)}, []string{"ns/s2"}},
		{"update s2 changes nothing", func() result {
			return describe(nil, false, lb.UpdateLoadBalancer(ctx, "cluster", s2, nil))
		}, result{}, []string{"ns/s2"}},
		{"bad loadBalancerIP is refused, retried with backoff", ensure(badIP), result{Refusal: controller.ReasonInvalidLoadBalancerIP, Err: true}, []string{"ns/s2"}},
		{"a Service of a class is implemented elsewhere", ensure(classed), result{Is: []string{"ImplementedElsewhere"}, Err: true}, []string{"ns/s2"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if diff := cmp.Diff(st.want, st.call()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(st.claim, f.holders(t, addr)); diff != "" {
				t.Errorf("holders of the claim of %s (-want +got):\n%s", addr, diff)
			}
		})
	}
	if got := lb.GetLoadBalancerName(ctx, "cluster", s2); got != "ns/s2" {
		t.Errorf("GetLoadBalancerName = %q, want ns/s2", got)
	}
}

// TestNotReady checks that calls before the import wait, then ask for a
// retry, and that nothing is allocated meanwhile.
func TestNotReady(t *testing.T) {
	p, err := New(Config{ReadyWait: metav1.Duration{Duration: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := p.LoadBalancer()
	_, err = lb.EnsureLoadBalancer(context.Background(), "cluster", service("s1"), nil)
	var re *api.RetryError
	if !errors.As(err, &re) {
		t.Fatalf("EnsureLoadBalancer before the import: err = %v, want an *api.RetryError", err)
	}
	if !strings.Contains(err.Error(), "not initialized") {
		t.Errorf("error %q does not say the provider was not initialized", err)
	}
	if _, ok := p.core.Held("ns", "s1", ipam.LoadBalancer); ok {
		t.Error("a Service was allocated before the import")
	}
	if p.Ready() == nil {
		t.Error("Ready() = nil before Initialize")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p2, _ := New(Config{ReadyWait: metav1.Duration{Duration: time.Hour}})
	lb2, _ := p2.LoadBalancer()
	if _, _, err := lb2.GetLoadBalancer(ctx, "cluster", service("s1")); !errors.Is(err, context.Canceled) {
		t.Errorf("GetLoadBalancer with a cancelled context: err = %v, want context.Canceled", err)
	}
}

func TestUnsupportedInterfaces(t *testing.T) {
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]bool{
		"Instances":    second(p.Instances()),
		"InstancesV2":  second(p.InstancesV2()),
		"Zones":        second(p.Zones()),
		"Clusters":     second(p.Clusters()),
		"Routes":       second(p.Routes()),
		"HasClusterID": p.HasClusterID(),
	} {
		if ok {
			t.Errorf("%s reports true", name)
		}
	}
	if p.ProviderName() != ProviderName {
		t.Errorf("ProviderName() = %q", p.ProviderName())
	}
}

func second[T any](_ T, ok bool) bool { return ok }

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Config
		wantErr error
	}{
		{name: "empty gives defaults", in: "", want: Config{ClientName: DefaultClientName,
			WaitingRetry: metav1.Duration{Duration: DefaultWaitingRetry}, ReadyWait: metav1.Duration{Duration: DefaultReadyWait}}},
		{name: "every field", in: "kubeconfig: /etc/k\nclientName: cp\nwaitingRetry: 2s\nreadyWait: 1m\n", want: Config{
			Kubeconfig: "/etc/k", ClientName: "cp",
			WaitingRetry: metav1.Duration{Duration: 2 * time.Second}, ReadyWait: metav1.Duration{Duration: time.Minute}}},
		{name: "json", in: `{"waitingRetry": "500ms"}`, want: Config{ClientName: DefaultClientName,
			WaitingRetry: metav1.Duration{Duration: 500 * time.Millisecond}, ReadyWait: metav1.Duration{Duration: DefaultReadyWait}}},
		{name: "unknown field", in: "server: https://example.test\n", wantErr: ErrInvalidConfig},
		{name: "bad duration", in: "waitingRetry: soon\n", wantErr: ErrInvalidConfig},
		{name: "negative duration", in: "readyWait: -1s\n", wantErr: ErrInvalidConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig(strings.NewReader(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			got.Logger = nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseConfig (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := ParseConfig(nil); err != nil {
		t.Errorf("ParseConfig(nil): %v", err)
	}
}

func TestRegister(t *testing.T) {
	Register()
	Register() // a second call must not register twice (which would exit)
	if !cloud.IsCloudProvider(ProviderName) {
		t.Fatalf("%q is not registered", ProviderName)
	}
	got, err := cloud.GetCloudProvider(ProviderName, strings.NewReader("waitingRetry: 3s\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := got.(*Provider)
	if !ok {
		t.Fatalf("GetCloudProvider returned %T, want *Provider", got)
	}
	if p.cfg.WaitingRetry.Duration != 3*time.Second {
		t.Errorf("the factory ignored the cloud config: waitingRetry %s", p.cfg.WaitingRetry.Duration)
	}
	if _, err := cloud.GetCloudProvider(ProviderName, strings.NewReader("nonsense: 1\n")); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("a bad cloud config: err = %v, want ErrInvalidConfig", err)
	}
}

func TestInitializeWithoutClientConfiguration(t *testing.T) {
	p, err := New(Config{ReadyWait: metav1.Duration{Duration: time.Millisecond}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	p.Initialize(nil, stop)
	if err := p.Ready(); err == nil || !strings.Contains(err.Error(), "no client configuration") {
		t.Errorf("Ready() = %v, want it to say there is no client configuration", err)
	}
}
