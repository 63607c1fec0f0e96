package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports nil when the component is healthy (or ready).
type Check func() error

// Endpoint serves /metrics, /healthz and /readyz.
type Endpoint struct {
	// Addr is the listen address, for example ":7472". Empty disables the endpoint.
	Addr string
	// Gatherer supplies /metrics.
	Gatherer prometheus.Gatherer
	// Healthy backs /healthz; nil means always healthy.
	Healthy Check
	// Ready backs /readyz; nil means always ready.
	Ready Check
	// Profiling serves Go's profiles under /debug/pprof/ too (off by default,
	// as in Kubernetes' components: a heap or CPU profile for a bug report).
	Profiling bool
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Serve listens on e.Addr and serves until ctx is done. It returns once the
// listener is bound, so callers learn about a busy port at start-up; serving
// errors after that are sent on the returned channel.
func (e Endpoint) Serve(ctx context.Context) (<-chan error, error) {
	errc := make(chan error, 1)
	if e.Addr == "" {
		return errc, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(e.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", checkHandler(e.Healthy))
	mux.HandleFunc("/readyz", checkHandler(e.Ready))
	if e.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", e.Addr)
	if err != nil {
		return nil, fmt.Errorf("daemon: listen on %s: %w", e.Addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("daemon: serve %s: %w", e.Addr, err)
		}
		close(errc)
	}()
	return errc, nil
}

func checkHandler(check Check) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if check != nil {
			if err := check(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	}
}
