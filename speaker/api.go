package speaker

import (
	"net/netip"
	"time"

	"github.com/herald-dev/herald/speaker/internal/decide"
	"github.com/herald-dev/herald/speaker/internal/reconcile"
	"github.com/herald-dev/herald/speaker/internal/report"
)

// Health tells whether the speaker works, for /healthz and /readyz.
type Health = report.Health

// DefaultTakeoverDelay is Config.TakeoverDelay's default.
const DefaultTakeoverDelay = decide.DefaultTakeoverDelay

// DefaultStartupMemberWait is Config.StartupMemberWait's default. It
// covers the spread of start-up times of speakers that restart together
// (each lists its caches first: seconds apart at 10,000 Services), and is
// what a whole-cluster start costs at most when a speaker that left a
// record never comes back; a speaker that finds a running one never waits.
const DefaultStartupMemberWait = 10 * time.Second

// ReasonBGPSessionFailed is the reason of the event recorded on a BGPPeer
// whose session with a node failed or cannot be configured.
const ReasonBGPSessionFailed = reconcile.ReasonBGPSessionFailed

// ReasonBFDNotUp is the reason of the Warning event recorded on a BGPPeer
// whose session with a node is established with BFD on, but whose BFD did
// not come up: the router does not answer BFD.
const ReasonBFDNotUp = reconcile.ReasonBFDNotUp

// Ranking lists candidates in the layer-2 takeover order for addr: the
// first announces it. Every speaker computes the same order (rendezvous
// hashing); tests and tools use it to predict the announcing node.
func Ranking(addr netip.Addr, candidates []string) []string {
	return decide.Ranking(addr, candidates)
}
