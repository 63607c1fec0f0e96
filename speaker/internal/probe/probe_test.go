package probe

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

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
	if diff := cmp.Diff([]string{"local-here", "local-draining-here"}, got); diff != "" {
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
