package reconcile

import (
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
)

// buildModel builds the configuration model from the caches.
func (s *Loop) buildModel() *config.Model {
	snap := config.Snapshot{SecretNamespace: s.cfg.Namespace}
	snap.IPPools, _ = s.inf.Pools.List(labels.Everything())
	snap.L2Advertisements, _ = s.inf.L2Ads.List(labels.Everything())
	snap.BGPPeers, _ = s.inf.Peers.List(labels.Everything())
	snap.BGPAdvertisements, _ = s.inf.BGPAds.List(labels.Everything())
	if s.inf.Secrets != nil {
		snap.Secrets, _ = s.inf.Secrets.Secrets(s.cfg.Namespace).List(labels.Everything())
	}
	return config.Build(snap)
}

// gatherServices summarises the Services this speaker serves that have
// claimed addresses, with their endpoints, as seen at now: it rebuilds the
// summaries of the Services whose Service, EndpointSlices or AddressClaims
// changed since the last call, or with a node that has settled since
// (SettleTracker).
func (s *Loop) gatherServices(now time.Time) []decide.Service {
	out, _ := s.changes.sums.Update(s.inf.Caches(), s.cfg.LoadBalancerClass, now)
	return out
}

// gatherNodes summarises every Node, with SpeakerAlive from membership.
func (s *Loop) gatherNodes(alive map[string]bool) []decide.Node {
	all, _ := s.inf.Nodes.List(labels.Everything())
	out := make([]decide.Node, 0, len(all))
	for _, n := range all {
		out = append(out, decide.Node{State: kubeinput.NodeStateFromNode(n, alive[n.Name]), Labels: n.Labels})
	}
	return out
}

// forgetGoneNodes makes membership and the interner forget the nodes whose
// Node is gone: a cluster that replaces its nodes would otherwise keep
// every node it ever had. (The status writer forgets the records it marked
// when they go; see report.StatusWriter.MarkGone.)
func (s *Loop) forgetGoneNodes(nodes []decide.Node) {
	exists := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		exists[n.State.Name] = true
	}
	gone := func(name string) bool { return !exists[name] }
	if s.members != nil {
		s.members.Forget(gone)
	}
	if s.inf.Interner != nil {
		s.inf.Interner.Forget(gone)
	}
}
