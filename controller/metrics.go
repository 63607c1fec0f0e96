package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-dev/herald/ipam"
)

// metrics are the controller's Prometheus metrics. Pool usage is read from
// the IPAM when scraped, so it is always exact.
type metrics struct {
	reconcileDuration *prometheus.HistogramVec
	reconcileErrors   *prometheus.CounterVec
	decisions         *prometheus.CounterVec
	leader            prometheus.Gauge
	importDuration    prometheus.Gauge
	importedAllocs    prometheus.Gauge
	claimRepairs      *prometheus.CounterVec
	memberlistMissing prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, core *Core) (*metrics, error) {
	m := &metrics{
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "herald", Subsystem: "controller", Name: "reconcile_duration_seconds",
			Help:    "Time to reconcile one object, by kind of object (Service, IPPool, L2Advertisement, BGPPeer, BGPAdvertisement, Config).",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"kind"}),
		reconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "controller", Name: "reconcile_errors_total",
			Help: "Reconciles that failed and were retried, by kind of object.",
		}, []string{"kind"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "controller", Name: "service_decisions_total",
			Help: "Changes of a Service's allocation decision, by condition type and reason (the Event reason).",
		}, []string{"condition", "reason"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "herald", Subsystem: "controller", Name: "leader",
			Help: "1 while this replica is the active (leading) controller.",
		}),
		importDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "herald", Subsystem: "controller", Name: "import_duration_seconds",
			Help: "Time the last start-up import of existing allocations took, from listing Services to ready.",
		}),
		importedAllocs: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "herald", Subsystem: "controller", Name: "imported_allocations",
			Help: "Allocations restored from Services by the last start-up import.",
		}),
		claimRepairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Subsystem: "controller", Name: "claim_repairs_total",
			Help: "AddressClaims repaired, by action: staleHolderRemoved (its Service is gone), claimRestored (deleted or edited by hand), claimedElsewhere (another allocator claimed the address first), orphanRemoved (a holder no allocator completed), invalidClaim (ignored).",
		}, []string{"action"}),
		memberlistMissing: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "herald", Subsystem: "controller", Name: "memberlist_secret_missing",
			Help: "1 while the speakers' gossip key Secret is missing and the controller does not create it, because speakers use gossip keys (Event MemberlistSecretMissing).",
		}),
	}
	for _, c := range []prometheus.Collector{m.reconcileDuration, m.reconcileErrors, m.decisions, m.leader,
		m.importDuration, m.importedAllocs, m.claimRepairs, m.memberlistMissing, poolCollector{core}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

var (
	descAllocations = prometheus.NewDesc("herald_controller_pool_allocations",
		"Allocations (a Service's load-balancer addresses, or its external IPs) counted in the pool.",
		[]string{"pool"}, nil)
	descAddresses = prometheus.NewDesc("herald_controller_pool_addresses",
		"Addresses of the pool by family and state: total (less avoided .0/.255), used, free.",
		[]string{"pool", "family", "state"}, nil)
	descOutside = prometheus.NewDesc("herald_controller_pool_addresses_outside",
		"Held addresses that are not usable addresses of their pool (after an edit or a deletion).",
		[]string{"pool"}, nil)
)

// poolCollector reports pool usage from the IPAM's exact counters.
type poolCollector struct{ core *Core }

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAllocations
	ch <- descAddresses
	ch <- descOutside
}

func (p poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ps := range p.core.Stats().Pools {
		ch <- prometheus.MustNewConstMetric(descAllocations, prometheus.GaugeValue, float64(ps.Allocations), ps.Name)
		ch <- prometheus.MustNewConstMetric(descOutside, prometheus.GaugeValue, float64(ps.Outside), ps.Name)
		for _, fam := range []struct {
			name string
			st   ipam.FamilyStats
		}{{"ipv4", ps.IPv4}, {"ipv6", ps.IPv6}} {
			if fam.st.Total.IsZero() && fam.st.Used.IsZero() {
				continue
			}
			for _, s := range []struct {
				state string
				n     ipam.Count
			}{{"total", fam.st.Total}, {"used", fam.st.Used}, {"free", fam.st.Free}} {
				ch <- prometheus.MustNewConstMetric(descAddresses, prometheus.GaugeValue, s.n.Float64(), ps.Name, fam.name, s.state)
			}
		}
	}
}
