package speakerlab

import (
	"fmt"
	"net/http"
	"net/netip"
	"sync/atomic"
)

// FakeKubeProxyHealth serves kube-proxy's node health check (/healthz on
// port 10256 of the node's address) in a node's namespace, with a status
// the test sets, for the speaker's --probe-kube-proxy.
type FakeKubeProxyHealth struct {
	healthy atomic.Bool
}

// SetHealthy makes /healthz answer 200 (true) or 503 (false).
func (f *FakeKubeProxyHealth) SetHealthy(ok bool) { f.healthy.Store(ok) }

// StartFakeKubeProxyHealth starts the server on n; it stops with the test.
func (l *Lab) StartFakeKubeProxyHealth(n *Node, port int) (*FakeKubeProxyHealth, error) {
	f := &FakeKubeProxyHealth{}
	f.healthy.Store(true)
	ln, err := n.Host.Listen("tcp", netip.AddrPortFrom(n.Addr4, uint16(port)).String())
	if err != nil {
		return nil, fmt.Errorf("speakerlab: fake kube-proxy health on %s: %w", n.Name, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if f.healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})}
	go func() { _ = srv.Serve(ln) }()
	l.T.Cleanup(func() { srv.Close() })
	return f, nil
}
