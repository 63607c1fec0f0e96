package suite

import (
	"cmp"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
	"github.com/herald-dev/herald/e2e/soak"
)

// group is one file's scenarios.
type group struct {
	order int
	name  string
	run   func(t *testing.T, l *productlab.Lab)
}

var groups []group

// register adds a group of scenarios to the suite; groups run in order (then by
// name), each as a subtest of TestSuite with the shared lab.
func register(order int, name string, run func(t *testing.T, l *productlab.Lab)) {
	groups = append(groups, group{order, name, run})
}

func TestSuite(t *testing.T) {
	l := productlab.New(t, productlab.Options{ControllerReplicas: 2, Manifests: true})
	slices.SortFunc(groups, func(a, b group) int {
		return cmp.Or(cmp.Compare(a.order, b.order), cmp.Compare(a.name, b.name))
	})
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			l := l.For(t)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("logs of the lab's daemons:\n%s", l.Logs(40))
				}
			})
			g.run(t, l)
		})
	}
	// Issue 14: the soak's invariants, once, over what the groups left: every
	// Service's addresses held, shared, counted and announced as they should
	// be, and nobody answering for an address of the layer-2 range that no
	// Service holds.
	t.Run("final check", func(t *testing.T) {
		var silent []netip.Addr
		for a := netlab.L2PoolV4.Addr(); netlab.L2PoolV4.Contains(a); a = a.Next() {
			silent = append(silent, a)
		}
		vs, err := soak.FinalCheck(t.Context(), l, 5*time.Second, silent)
		if err != nil {
			t.Fatalf("%v", err)
		}
		for _, v := range vs {
			t.Errorf("%s", v)
		}
	})
}

// logFailedConnections logs, when a client's connection to addr failed, what the
// speakers and controllers wrote from 3 s before the first failure to 4 s after it
// about the address, membership, slow reconciles, hand-overs and conflicts: the
// suite's failure output otherwise shows only the logs' last lines, long after.
func logFailedConnections(t *testing.T, l *productlab.Lab, addr netip.Addr, failed []productlab.Attempt) {
	t.Helper()
	if len(failed) == 0 {
		return
	}
	t.Logf("what the daemons logged around the first failed connection to %v (%v):\n%s", addr,
		failed[0].Start.Format(time.StampMilli),
		l.LogsAround(failed[0].Start, 3*time.Second, 4*time.Second,
			addr.String(), "speaker gone", "speaker joined", "slow reconcile", "handed over", "conflict", "became leader", "ERROR"))
}
