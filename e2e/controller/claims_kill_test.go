package controller

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
)

// Sizes of TestClaimsSurviveSIGKILL (issue 11: 200 allocations and releases).
const (
	killOperations = 200
	killCount      = 10
	killMaxLive    = 48 // the pool holds 64 addresses per family
)

// killService is one Service the schedule creates.
type killService struct {
	name    string
	dual    bool
	key     string // herald.dev/sharing-key, or ""
	pinned  string // herald.dev/addresses, or ""
	port    int32
	deleted bool
}

func (k killService) service(ns string) *corev1.Service {
	opts := []svcOpt{withPorts(k.port)}
	if k.pinned != "" {
		opts = append(opts, annotate(config.AnnotationAddresses, k.pinned))
	}
	if k.dual {
		opts = append(opts, dualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol))
	}
	if k.key != "" {
		opts = append(opts, annotate(config.AnnotationSharingKey, k.key))
	}
	return newService(ns, k.name, opts...)
}

// TestClaimsSurviveSIGKILL is the fourth case of issue 11: one
// herald-controller binary (leader election off) serves while a schedule
// drawn from a fixed seed creates, deletes and moves Services (200
// operations: IPv4, dual-stack, sharers with one of three keys, and Services
// asking for an address of their own, which are edited to ask for another
// one), and the controller
// is killed with SIGKILL ten times at random moments, each time restarted
// at once while the operations go on. A monitor checks throughout that no
// Service's address ever changes or goes while it exists (except to an
// address it was edited to ask for later), that no address
// is shown by two Services that may not share it, and that every shown
// address's claim lists the Service. At the end every surviving Service
// has its addresses (the ones it had before a kill, its first, or the one
// it asks for), and the
// claims record exactly what the Services show: no claim lists a deleted
// Service.
func TestClaimsSurviveSIGKILL(t *testing.T) {
	e := newEnvWith(t, wideClusterIPs())
	e.grantControllerRBAC(t, "alice")
	bin := buildController(t)
	const ns = "claims-kill"
	e.namespace(t, ns, nil)
	e.createPool(t, "churn", []string{"203.0.113.0/26", "2001:db8:30::/122"})
	r := startReplica(t, e.cp, bin, "alice", "--leader-elect=false")
	waitLeading(t, r)

	// Pinned Services ask for an address of this pool, and are edited to ask
	// for another one: a move, which a kill may interrupt between the new
	// claim, the status and the release of the old claim.
	e.createPool(t, "pinned", []string{"203.0.113.128/26"}, noAutoAssign)
	pinned := map[string]bool{} // addresses asked for by a live Service
	freePinned := func(rng *rand.Rand) string {
		for {
			a := fmt.Sprintf("203.0.113.%d", 128+rng.IntN(64))
			if !pinned[a] {
				pinned[a] = true
				return a
			}
		}
	}
	seed := uint64(11)
	if s := os.Getenv("HERALD_TEST_SEED"); s != "" {
		// Another schedule, to explore; the test's own is seed 11.
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("HERALD_TEST_SEED=%q: %v", s, err)
		}
	}
	t.Logf("schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 200))
	kills := map[int]bool{}
	for len(kills) < killCount {
		kills[rng.IntN(killOperations)] = true
	}
	var askedMu sync.Mutex
	asked := map[string][]string{} // a pinned Service's requests, in order
	ask := func(k *killService) {
		askedMu.Lock()
		defer askedMu.Unlock()
		asked[k.name] = append(asked[k.name], k.pinned)
	}
	mon := e.startRaceMonitor(t, "")
	mon.stable = true
	mon.asked = func(_, name string) []string {
		askedMu.Lock()
		defer askedMu.Unlock()
		return slices.Clone(asked[name])
	}
	var svcs []*killService
	live := func() []*killService {
		return slices.DeleteFunc(slices.Clone(svcs), func(k *killService) bool { return k.deleted })
	}
	ctx := context.Background()
	created, deleted, edited := 0, 0, 0
	for op := range killOperations {
		l := live()
		pins := slices.DeleteFunc(slices.Clone(l), func(k *killService) bool { return k.pinned == "" })
		switch {
		case len(pins) > 0 && rng.Float64() < 0.15:
			k := pins[rng.IntN(len(pins))]
			old := k.pinned
			k.pinned = freePinned(rng)
			delete(pinned, old)
			ask(k)
			e.updateService(t, ns, k.name, annotate(config.AnnotationAddresses, k.pinned))
			edited++
		case len(l) < 6 || (len(l) < killMaxLive && rng.Float64() < 0.6):
			k := &killService{name: fmt.Sprintf("k-%03d", op), port: int32(10000 + op)}
			switch x := rng.IntN(10); {
			case x < 2:
				k.dual = true
			case x < 4:
				k.key = fmt.Sprintf("key-%d", rng.IntN(3))
			case x < 6:
				k.pinned = freePinned(rng)
			}
			if k.pinned != "" {
				ask(k)
			}
			if _, err := e.kube.CoreV1().Services(ns).Create(ctx, k.service(ns), metav1.CreateOptions{}); err != nil {
				t.Fatalf("operation %d: create %s: %v", op, k.name, err)
			}
			svcs = append(svcs, k)
			created++
		default:
			k := l[rng.IntN(len(l))]
			if err := e.kube.CoreV1().Services(ns).Delete(ctx, k.name, metav1.DeleteOptions{}); err != nil {
				t.Fatalf("operation %d: delete %s: %v", op, k.name, err)
			}
			k.deleted = true
			delete(pinned, k.pinned)
			deleted++
		}
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		if kills[op] {
			time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
			r.kill(t)
			r = startReplica(t, e.cp, bin, "alice", "--leader-elect=false")
		}
	}
	t.Logf("%d Services created, %d moved to another address they asked for, %d deleted; the controller was killed %d times",
		created, edited, deleted, killCount)

	final := live()
	eventuallyWithin(t, 2*waitTimeout, "every surviving Service addressed, the claims exact", func() (bool, string) {
		list := e.allServices(t)
		for _, k := range final {
			i := slices.IndexFunc(list, func(s corev1.Service) bool { return s.Namespace == ns && s.Name == k.name })
			if i < 0 {
				return false, k.name + " not listed"
			}
			got := ingressIPs(&list[i])
			if want := map[bool]int{false: 1, true: 2}[k.dual]; len(got) != want || (k.pinned != "" && got[0] != k.pinned) {
				return false, fmt.Sprintf("%s: ingress %v, want %d addresses (asked for: %q); %s", k.name, got, want, k.pinned, describeConditions(list[i].Status.Conditions))
			}
		}
		p := claimProblems(list, e.allClaims(t))
		return len(p) == 0, fmt.Sprint(p)
	})
	mon.stop(t)
	t.Logf("%d Services survive; the monitor checked %d times", len(final), mon.rounds.Load())
}
