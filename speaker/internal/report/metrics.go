package report

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-dev/herald/speaker/internal/heartbeat"
	"github.com/herald-dev/herald/speaker/layer2"
)

// Metrics are the speaker's Prometheus metrics. Counters of the wire
// (ARP/NDP requests, replies, gratuitous packets, conflicting packets,
// drops) are read from the Announcer's Stats at scrape time.
type Metrics struct {
	Announced        *prometheus.GaugeVec
	OwnershipChanges *prometheus.CounterVec
	Conflicts        *prometheus.CounterVec
	Reconciles       prometheus.Counter
	ReconcileSeconds prometheus.Histogram
	StatusWrites     *prometheus.CounterVec
	Events           *prometheus.CounterVec
	// EventsDropped counts the events the recorder did not write (package
	// events' DropReason).
	EventsDropped   *prometheus.CounterVec
	KubeProxyProbes *prometheus.CounterVec
	// HeartbeatVerdicts counts the fast failure detector's verdicts
	// (package heartbeat), by kind.
	HeartbeatVerdicts *prometheus.CounterVec
	// DrainAvailable, DrainedAddresses and DrainErrors describe the drain
	// of moved addresses' connections (package drain).
	DrainAvailable   prometheus.Gauge
	DrainedAddresses prometheus.Gauge
	DrainErrors      prometheus.Counter
	// StartupWait is how long the speaker waited at start for the
	// speakers it expected, labelled with the outcome
	// (decide.StartupOutcome).
	StartupWait *prometheus.GaugeVec

	BgpSessionUp    *prometheus.GaugeVec
	BgpAdvertised   *prometheus.GaugeVec
	BgpBFDState     *prometheus.GaugeVec
	BgpStateChanges *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg; stats, members and
// invalidClaims are read at scrape time.
func NewMetrics(reg prometheus.Registerer, stats func() layer2.Stats, members func() (alive, gone int), invalidClaims func() int) *Metrics {
	m := &Metrics{
		Announced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_speaker_announced_addresses",
			Help: "Addresses this node announces, by protocol (arp, ndp, bgp).",
		}, []string{"protocol"}),
		OwnershipChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_speaker_layer2_ownership_changes_total",
			Help: "Layer-2 addresses this node started (gained) or stopped (lost) announcing.",
		}, []string{"change"}),
		Conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_speaker_layer2_conflicts_total",
			Help: "Layer-2 conflicts detected (another MAC answering for an address this node announces), by outcome: kept, yielded, foreign (a device that is no speaker), notCandidate (a speaker whose node may not announce the address).",
		}, []string{"outcome"}),
		Reconciles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_speaker_reconciles_total",
			Help: "Computations of this node's desired state.",
		}),
		ReconcileSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_speaker_reconcile_duration_seconds",
			Help:    "Time to compute this node's desired state and apply it to the announcers.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		StatusWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_speaker_status_writes_total",
			Help: "Writes of this node's SpeakerStatus, by result (ok, error).",
		}, []string{"result"}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_speaker_events_total",
			Help: "Events recorded on Services and BGPPeers, by reason (including those herald_speaker_events_dropped_total counts as not written).",
		}, []string{"reason"}),
		EventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_speaker_events_dropped_total",
			Help: "Events not written, by reason: queue_full (the API server did not keep up), rate_limited (more than 25 about one object and type, then one per 5 minutes), write_failed (refused, or no answer in 3 attempts), shutdown (queued when the speaker stopped).",
		}, []string{"reason"}),
		KubeProxyProbes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_speaker_kube_proxy_probes_total",
			Help: "Probes of kube-proxy's health checks on this node, by kind (node, service) and result (healthy, unhealthy, error).",
		}, []string{"kind", "result"}),
		HeartbeatVerdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_speaker_heartbeat_verdicts_total",
			Help: "Verdicts of the fast failure detector on the owners this node succeeds to, by kind: presumed (no heartbeat for the timeout: presumed dead, addresses taken), cleared (a heartbeat came again: the node is back, or it was a false alarm), confirmed (membership agreed), expired (membership still counted the node alive; the verdict was dropped), spared (no heartbeat for the timeout, but the node's kernel answered a probe: no verdict).",
		}, []string{"kind"}),
		DrainAvailable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_speaker_drain_available",
			Help: "1 when the drain of moved addresses' connections (--drain-window) is on and the speaker may program it, 0 when it is off or was requested but is unavailable (the speaker lacks CAP_NET_ADMIN: see its log).",
		}),
		DrainedAddresses: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_speaker_drained_addresses",
			Help: "Layer-2 addresses this node took over whose connections it forwards to their previous owner.",
		}),
		DrainErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_speaker_drain_errors_total",
			Help: "Failures to program the drains (nftables table herald-drain, its routes and rules).",
		}),
		StartupWait: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_speaker_startup_wait_seconds",
			Help: "Seconds the speaker waited at start, before its first reconcile, for the speakers it expected (--startup-member-wait), by outcome: running (it found a speaker already running), joined (every expected speaker joined), bound (the bound passed first), off. Set once.",
		}, []string{"outcome"}),
		BgpSessionUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_speaker_bgp_session_up",
			Help: "1 when the BGP session with the peer (a BGPPeer's name) is Established, else 0.",
		}, []string{"peer"}),
		BgpAdvertised: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_speaker_bgp_advertised_prefixes",
			Help: "Prefixes advertised to the peer (0 while the session is not Established).",
		}, []string{"peer"}),
		BgpBFDState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_speaker_bgp_bfd_state",
			Help: "1 for the BFD session's current state with the peer (Up, Down, Init, AdminDown), 0 for the others; absent when BFD is off.",
		}, []string{"peer", "state"}),
		BgpStateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_speaker_bgp_session_state_changes_total",
			Help: "BGP sessions reaching (established) or leaving (dropped) the Established state, by peer.",
		}, []string{"peer", "change"}),
	}
	for k := heartbeat.Presumed; k <= heartbeat.Spared; k++ {
		m.HeartbeatVerdicts.WithLabelValues(k.String())
	}
	reg.MustRegister(m.Announced, m.OwnershipChanges, m.Conflicts, m.Reconciles, m.ReconcileSeconds, m.StatusWrites, m.Events, m.EventsDropped, m.KubeProxyProbes, m.HeartbeatVerdicts,
		m.DrainAvailable, m.DrainedAddresses, m.DrainErrors, m.StartupWait,
		m.BgpSessionUp, m.BgpAdvertised, m.BgpBFDState, m.BgpStateChanges,
		&wireCollector{stats: stats}, &memberCollector{members: members},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herald_speaker_invalid_address_claims",
			Help: "AddressClaims in the speaker's cache that fail validation and are ignored: their addresses are not announced.",
		}, func() float64 { return float64(invalidClaims()) }))
	return m
}

var (
	descRequests = prometheus.NewDesc("herald_speaker_layer2_requests_total",
		"ARP requests or neighbour solicitations received on announcing interfaces, answered or not.", []string{"protocol"}, nil)
	descReplies = prometheus.NewDesc("herald_speaker_layer2_replies_total",
		"ARP replies or solicited neighbour advertisements sent.", []string{"protocol"}, nil)
	descGratuitous = prometheus.NewDesc("herald_speaker_layer2_gratuitous_total",
		"Gratuitous ARP packets or unsolicited neighbour advertisements sent.", []string{"protocol"}, nil)
	descConflictPackets = prometheus.NewDesc("herald_speaker_layer2_conflict_packets_total",
		"Packets showing another MAC claiming an address this node announces.", []string{"protocol"}, nil)
	descSendErrors = prometheus.NewDesc("herald_speaker_layer2_send_errors_total",
		"ARP/NDP packets that could not be sent.", []string{"protocol"}, nil)
	descSocketErrors = prometheus.NewDesc("herald_speaker_layer2_socket_errors_total",
		"ARP/NDP sockets that failed to open or failed while reading (each is retried).", []string{"protocol"}, nil)
	descDrops = prometheus.NewDesc("herald_speaker_layer2_drops_total",
		"ARP/NDP packets received and not answered, by reason.", []string{"protocol", "reason"}, nil)
	descMembers = prometheus.NewDesc("herald_speaker_members",
		"Speakers in membership as this node sees them, by state: alive (alive or suspect), gone (dead or left).", []string{"state"}, nil)
)

// wireCollector exports the Announcer's counters.
type wireCollector struct{ stats func() layer2.Stats }

func (c *wireCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descReplies, descGratuitous, descConflictPackets, descSendErrors, descSocketErrors, descDrops} {
		ch <- d
	}
}

func (c *wireCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, p := range []struct {
		name string
		s    layer2.ProtocolStats
	}{{"arp", s.ARP}, {"ndp", s.NDP}} {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(p.s.Requests), p.name)
		ch <- prometheus.MustNewConstMetric(descReplies, prometheus.CounterValue, float64(p.s.Replies), p.name)
		ch <- prometheus.MustNewConstMetric(descGratuitous, prometheus.CounterValue, float64(p.s.Gratuitous), p.name)
		ch <- prometheus.MustNewConstMetric(descConflictPackets, prometheus.CounterValue, float64(p.s.Conflicts), p.name)
		ch <- prometheus.MustNewConstMetric(descSendErrors, prometheus.CounterValue, float64(p.s.SendErrors), p.name)
		ch <- prometheus.MustNewConstMetric(descSocketErrors, prometheus.CounterValue, float64(p.s.SocketErrors), p.name)
		for _, r := range layer2.DropReasons {
			ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(p.s.Drops[r]), p.name, r.String())
		}
	}
}

// memberCollector exports the membership counts.
type memberCollector struct{ members func() (alive, gone int) }

func (c *memberCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descMembers }

func (c *memberCollector) Collect(ch chan<- prometheus.Metric) {
	alive, gone := c.members()
	ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(alive), "alive")
	ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(gone), "gone")
}
