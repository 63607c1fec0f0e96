package probe

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/herald-dev/herald/speaker/internal/decide"
)

// Prober asks kube-proxy on this node whether it can serve: its
// node health server (port 10256 by default: failing when kube-proxy has
// not synced its rules recently, or the node is being deleted) and, for
// each Service with externalTrafficPolicy Local that this node would
// announce, the Service's healthCheckNodePort (503 when kube-proxy sees no
// local endpoint). Its verdicts are published in membership metadata, so
// every speaker leaves this node out alike and the election stays
// consistent.
type Prober struct {
	client     *http.Client
	nodeIP     netip.Addr
	healthPort int
}

// Verdict is the outcome of one round of probes.
type Verdict struct {
	// DataPlaneDown is true when the node health check failed.
	DataPlaneDown bool
	// Withdrawn are the Services whose health check said 503.
	Withdrawn []decide.ServiceKey
	// Results counts probes by kind and result, for metrics.
	Results map[[2]string]int
}

func NewProber(nodeIP netip.Addr, healthPort int) *Prober {
	return &Prober{
		client:     &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}},
		nodeIP:     nodeIP,
		healthPort: healthPort,
	}
}

// maxServiceProbes bounds the Service probes of one round, and
// maxParallelProbes how many run at once: a round of Services whose health
// checks all time out takes maxServiceProbes/maxParallelProbes timeouts
// (16 s), not one timeout per Service (128 s).
const (
	maxServiceProbes  = 256
	maxParallelProbes = 16
)

// Probe runs one round. A node health check that fails, or cannot be
// reached, marks the data plane down: the operator asked for probing, and
// a node whose kube-proxy does not answer cannot be trusted to forward. A
// Service health check withdraws the Service only on an explicit 503; an
// error leaves it announced (kube-proxy's node check covers a dead
// kube-proxy).
func (p *Prober) Probe(ctx context.Context, local []decide.Service) Verdict {
	v := Verdict{Results: map[[2]string]int{}}
	code, err := p.get(ctx, p.healthPort)
	switch {
	case err != nil:
		v.DataPlaneDown = true
		v.Results[[2]string{"node", "error"}]++
	case code != http.StatusOK:
		v.DataPlaneDown = true
		v.Results[[2]string{"node", "unhealthy"}]++
	default:
		v.Results[[2]string{"node", "healthy"}]++
	}
	local = local[:min(len(local), maxServiceProbes)]
	for i, r := range p.probeServices(ctx, local) {
		switch {
		case r.err != nil:
			v.Results[[2]string{"service", "error"}]++
		case r.code == http.StatusServiceUnavailable:
			v.Withdrawn = append(v.Withdrawn, local[i].Key)
			v.Results[[2]string{"service", "unhealthy"}]++
		default:
			v.Results[[2]string{"service", "healthy"}]++
		}
	}
	return v
}

// probeResult is one health check's answer.
type probeResult struct {
	code int
	err  error
}

// probeServices probes the Services' health checks, maxParallelProbes at
// a time, and returns the answers in the order of services.
func (p *Prober) probeServices(ctx context.Context, services []decide.Service) []probeResult {
	out := make([]probeResult, len(services))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelProbes)
	for i, s := range services {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			code, err := p.get(ctx, int(s.HealthCheckNodePort))
			out[i] = probeResult{code: code, err: err}
		})
	}
	wg.Wait()
	return out
}

func (p *Prober) get(ctx context.Context, port int) (int, error) {
	url := "http://" + netip.AddrPortFrom(p.nodeIP, uint16(port)).String() + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("probe: %s: %w", url, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("probe: %s: %w", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Targets returns the Services of services that node self has a
// local endpoint for (ready, or serving-terminating) under
// externalTrafficPolicy Local with a healthCheckNodePort: the ones whose
// kube-proxy health check can contradict the EndpointSlices. They are
// sorted by Service, whatever the order of services (the loop's summaries
// come sorted, but Targets does not rely on it): the same Services are
// probed, and the same ones left out past maxServiceProbes, round after
// round.
func Targets(services []decide.Service, self string) []decide.Service {
	var out []decide.Service
	for _, s := range services {
		if s.TrafficPolicy != decide.TrafficPolicyLocal || s.HealthCheckNodePort == 0 {
			continue
		}
		for _, ep := range append(s.EndpointsV4[:len(s.EndpointsV4):len(s.EndpointsV4)], s.EndpointsV6...) {
			if ep.NodeName == self && (ep.Ready || (ep.Serving && ep.Terminating)) {
				out = append(out, s)
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b decide.Service) int { return decide.CompareServiceKeys(a.Key, b.Key) })
	return out
}
