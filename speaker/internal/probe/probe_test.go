package probe

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-dev/herald/speaker/internal/decide"
)

// fakeKubeProxy serves /healthz on 127.0.0.1 with the given status.
func fakeKubeProxy(t *testing.T, status int) int {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

func TestKubeProxyProbe(t *testing.T) {
	healthy := fakeKubeProxy(t, http.StatusOK)
	unhealthy := fakeKubeProxy(t, http.StatusServiceUnavailable)
	closed := func() int {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		return p
	}()
	local := func(name string, port int) decide.Service {
		return decide.Service{Key: decide.ServiceKey{Namespace: "default", Name: name}, TrafficPolicy: decide.TrafficPolicyLocal, HealthCheckNodePort: int32(port)}
	}
	tests := []struct {
		name         string
		nodePort     int
		services     []decide.Service
		wantDown     bool
		wantWithdraw []decide.ServiceKey
	}{
		{name: "healthy node, healthy service", nodePort: healthy, services: []decide.Service{local("a", healthy)}},
		{name: "node health failing", nodePort: unhealthy, wantDown: true},
		{name: "kube-proxy not answering", nodePort: closed, wantDown: true},
		{
			name: "a 503 withdraws the Service, an error does not", nodePort: healthy,
			services:     []decide.Service{local("a", unhealthy), local("b", closed), local("c", healthy)},
			wantWithdraw: []decide.ServiceKey{{Namespace: "default", Name: "a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProber(netip.MustParseAddr("127.0.0.1"), tt.nodePort)
			v := p.Probe(t.Context(), tt.services)
			if v.DataPlaneDown != tt.wantDown {
				t.Errorf("DataPlaneDown = %v, want %v", v.DataPlaneDown, tt.wantDown)
			}
			if diff := cmp.Diff(tt.wantWithdraw, v.Withdrawn); diff != "" {
				t.Errorf("Withdrawn (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProbeTargets(t *testing.T) {
	services := []decide.Service{
		{Key: decide.ServiceKey{Namespace: "d", Name: "local-here"}, TrafficPolicy: decide.TrafficPolicyLocal, HealthCheckNodePort: 30001, EndpointsV6: []decide.Endpoint{ready("n1")}},
		{Key: decide.ServiceKey{Namespace: "d", Name: "local-draining-here"}, TrafficPolicy: decide.TrafficPolicyLocal, HealthCheckNodePort: 30002, EndpointsV4: []decide.Endpoint{terminating("n1")}},
		{Key: decide.ServiceKey{Namespace: "d", Name: "local-elsewhere"}, TrafficPolicy: decide.TrafficPolicyLocal, HealthCheckNodePort: 30003, EndpointsV4: []decide.Endpoint{ready("n2"), starting("n1")}},
		{Key: decide.ServiceKey{Namespace: "d", Name: "cluster"}, TrafficPolicy: decide.TrafficPolicyCluster, EndpointsV4: []decide.Endpoint{ready("n1")}},
	}
	var got []string
	for _, s := range Targets(services, "n1") {
		got = append(got, s.Key.Name)
	}
	if diff := cmp.Diff([]string{"local-draining-here", "local-here"}, got); diff != "" {
		t.Errorf("Targets (-want +got):\n%s", diff)
	}
}

func ready(node string) decide.Endpoint {
	return decide.Endpoint{NodeName: node, Ready: true, Serving: true}
}

func terminating(node string) decide.Endpoint {
	return decide.Endpoint{NodeName: node, Serving: true, Terminating: true}
}

func starting(node string) decide.Endpoint { return decide.Endpoint{NodeName: node} }

// TestTargetsAreSortedWhateverTheInputOrder: whatever the order the
// caller hands Targets the summaries in, the targets (and so which
// Services the 256-probe cap keeps) must not follow it.
func TestTargetsAreSortedWhateverTheInputOrder(t *testing.T) {
	var services []decide.Service
	for i := range 300 {
		services = append(services, decide.Service{
			Key:           decide.ServiceKey{Namespace: "default", Name: fmt.Sprintf("svc-%03d", (i*7919)%300)},
			TrafficPolicy: decide.TrafficPolicyLocal, HealthCheckNodePort: 30000, EndpointsV4: []decide.Endpoint{ready("n1")},
		})
	}
	want := Targets(services, "n1")
	if !slices.IsSortedFunc(want, func(a, b decide.Service) int { return decide.CompareServiceKeys(a.Key, b.Key) }) {
		t.Errorf("targets not sorted by Service: %v...", want[:3])
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		rng.Shuffle(len(services), func(i, j int) { services[i], services[j] = services[j], services[i] })
		if got := Targets(services, "n1"); !slices.EqualFunc(want, got, func(a, b decide.Service) bool { return a.Key == b.Key }) {
			t.Fatal("the targets changed with the order of the Services")
		}
	}
}

// TestServiceProbesRunInParallel: a round probes the Services several at a
// time, at most maxParallelProbes, so a round of slow answers takes a few
// probe timeouts, not one per Service.
func TestServiceProbesRunInParallel(t *testing.T) {
	var mu sync.Mutex
	inFlight, most, total := 0, 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		total++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	var services []decide.Service
	for i := range 3 * maxParallelProbes {
		services = append(services, decide.Service{Key: decide.ServiceKey{Namespace: "default", Name: fmt.Sprintf("svc-%02d", i)}, HealthCheckNodePort: int32(port)})
	}
	v := NewProber(netip.MustParseAddr("127.0.0.1"), port).Probe(t.Context(), services)
	if len(v.Withdrawn) != len(services) {
		t.Fatalf("withdrawn %d Services, want %d", len(v.Withdrawn), len(services))
	}
	if !slices.IsSortedFunc(v.Withdrawn, decide.CompareServiceKeys) {
		t.Errorf("withdrawn Services not in the targets' order: %v", v.Withdrawn)
	}
	mu.Lock()
	defer mu.Unlock()
	if most < 2 || most > maxParallelProbes {
		t.Errorf("at most %d probes in flight at once, want 2 to %d", most, maxParallelProbes)
	}
}
