package reconcile

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/kubeinput"
)

// startupPoll is how often a starting speaker that waits for the speakers
// it expects looks at membership again and rejoins the missing ones.
const startupPoll = 250 * time.Millisecond

// startupJoinTimeout is how long a starting speaker tries to join when the
// wait is off: the first join round, as before the wait existed.
const startupJoinTimeout = 3 * time.Second

// maxLoggedNames caps the node names a start-up log line lists.
const maxLoggedNames = 5

// AwaitPeers joins the other speakers before the first reconcile, then
// waits, for at most bound, until every speaker it can expect is a member
// or one it found already runs (decide.StartupWait), rejoining the missing
// ones every startupPoll. A speaker that starts beside the others (a
// whole-cluster restart) thus does not claim their addresses until they
// join. With bound zero or negative it only joins, for up to 3 s. It logs
// one line with the outcome and sets the StartupWait metric; when ctx ends
// first it returns at once.
func (s *Loop) AwaitPeers(ctx context.Context, bound time.Duration) decide.StartupVerdict {
	start := time.Now()
	if bound <= 0 {
		joinCtx, cancel := context.WithTimeout(ctx, startupJoinTimeout)
		n := s.joinPeers(joinCtx, true)
		cancel()
		v := decide.StartupWait(decide.StartupView{Self: s.cfg.NodeName})
		s.reportStartup(v, time.Since(start), n)
		return v
	}
	// The joins stop at the bound; a join under way may finish its
	// batch (memberlist's TCP timeout, 1 s).
	joinCtx, cancel := context.WithDeadline(ctx, start.Add(bound))
	defer cancel()
	contacted := s.joinPeers(joinCtx, true)
	tick := time.NewTicker(startupPoll)
	defer tick.Stop()
	var records []decide.SpeakerRecord
	listed, logged := false, false
	for {
		view := decide.StartupView{
			Self: s.cfg.NodeName, Nodes: s.joinableNodes(), Alive: s.members.Alive(), Started: s.members.Started(),
			Waited: time.Since(start), Bound: bound,
		}
		// The records matter only when nobody runs yet: a restart in a
		// live cluster does not list them (at 10,000 Services they hold
		// every announcement).
		if !listed && len(view.Started) == 0 {
			records, listed = s.speakerRecords(joinCtx), true
		}
		view.Records = records
		v := decide.StartupWait(view)
		if v.Outcome != decide.StartupWaiting {
			s.reportStartup(v, time.Since(start), contacted)
			return v
		}
		if !logged {
			s.log.Info("waiting for the expected speakers before the first reconcile", "bound", bound,
				"expected", len(v.Expected), "missing", namesForLog(v.Missing))
			logged = true
		}
		select {
		case <-ctx.Done():
			s.log.Info("start-up wait ended: the speaker stops", "waited", time.Since(start).Round(time.Millisecond))
			return v
		case <-tick.C:
		}
		missing := map[string]bool{}
		for _, n := range v.Missing {
			missing[n] = true
		}
		contacted += s.joinNodes(joinCtx, true, func(name string) bool { return missing[name] })
	}
}

// joinableNodes returns the names of the Nodes that have an address to
// join.
func (s *Loop) joinableNodes() []string {
	nodes, _ := s.inf.Nodes.List(labels.Everything())
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if _, ok := kubeinput.NodeAddress(n); ok {
			out = append(out, n.Name)
		}
	}
	return out
}

// speakerRecords lists the SpeakerStatus records; on failure it logs and
// returns none, so that every Node is expected (within the bound).
func (s *Loop) speakerRecords(ctx context.Context) []decide.SpeakerRecord {
	if s.status == nil {
		return nil
	}
	records, err := s.status.SpeakerRecords(ctx)
	if err != nil {
		s.log.Warn("start-up wait: cannot read the speakers' records; waiting for every Node's", "err", err)
	}
	return records
}

// reportStartup logs how the start-up wait ended and exports it.
func (s *Loop) reportStartup(v decide.StartupVerdict, waited time.Duration, contacted int) {
	s.log.Info("joined speaker membership", "outcome", v.Outcome.String(), "waited", waited.Round(time.Millisecond),
		"expected", len(v.Expected), "missing", namesForLog(v.Missing),
		"contacted", contacted, "members", len(s.members.Alive()), "advertise", s.cfg.NodeIP)
	if s.metrics != nil {
		s.metrics.StartupWait.WithLabelValues(v.Outcome.String()).Set(waited.Seconds())
	}
}

// namesForLog lists at most maxLoggedNames names, and how many more.
func namesForLog(names []string) []string {
	if len(names) <= maxLoggedNames {
		return names
	}
	out := append([]string(nil), names[:maxLoggedNames]...)
	return append(out, fmt.Sprintf("and %d more", len(names)-maxLoggedNames))
}
