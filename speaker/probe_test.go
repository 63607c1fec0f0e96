package speaker

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
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
	local := func(name string, port int) Service {
		return Service{Key: ServiceKey{"default", name}, TrafficPolicy: TrafficPolicyLocal, HealthCheckNodePort: int32(port)}
	}
	tests := []struct {
		name         string
		nodePort     int
		services     []Service
		wantDown     bool
		wantWithdraw []ServiceKey
	}{
		{name: "healthy node, healthy service", nodePort: healthy, services: []Service{local("a", healthy)}},
		{name: "node health failing", nodePort: unhealthy, wantDown: true},
		{name: "kube-proxy not answering", nodePort: closed, wantDown: true},
		{
			name: "a 503 withdraws the Service, an error does not", nodePort: healthy,
			services:     []Service{local("a", unhealthy), local("b", closed), local("c", healthy)},
			wantWithdraw: []ServiceKey{{"default", "a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newKubeProxyProber(netip.MustParseAddr("127.0.0.1"), tt.nodePort)
			v := p.probe(t.Context(), tt.services)
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
	services := []Service{
		{Key: ServiceKey{"d", "local-here"}, TrafficPolicy: TrafficPolicyLocal, HealthCheckNodePort: 30001, EndpointsV6: []Endpoint{ready("n1")}},
		{Key: ServiceKey{"d", "local-draining-here"}, TrafficPolicy: TrafficPolicyLocal, HealthCheckNodePort: 30002, EndpointsV4: []Endpoint{terminating("n1")}},
		{Key: ServiceKey{"d", "local-elsewhere"}, TrafficPolicy: TrafficPolicyLocal, HealthCheckNodePort: 30003, EndpointsV4: []Endpoint{ready("n2"), starting("n1")}},
		{Key: ServiceKey{"d", "cluster"}, TrafficPolicy: TrafficPolicyCluster, EndpointsV4: []Endpoint{ready("n1")}},
	}
	var got []string
	for _, s := range probeTargets(services, "n1") {
		got = append(got, s.Key.Name)
	}
	if diff := cmp.Diff([]string{"local-here", "local-draining-here"}, got); diff != "" {
		t.Errorf("probeTargets (-want +got):\n%s", diff)
	}
}
