package soak

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is what a soak did and found.
type Report struct {
	Seed     uint64
	Duration time.Duration
	Rate     float64
	Faults   map[FaultKind]int
	Ops      map[OpKind]int
	// OpErrors are operations the API refused or that failed (not
	// violations: a requested address may be malformed on purpose).
	OpErrors []string
	// Restarts are the controllers and speakers that exited without a fault
	// stopping them, which the soak started again as a kubelet would.
	Restarts []string
	// Snapshots counts the observations checked; Checks the individual
	// checks, by invariant.
	Snapshots     int
	ObserveErrors int
	Checks        map[int]int
	Probes        map[string]ProbeCount
	// Violations are grouped by invariant, subject and kind, in order of
	// first occurrence.
	Violations []*ViolationGroup
	LabUp      time.Duration
	Elapsed    time.Duration

	Settle, FailoverBound time.Duration
	index                 map[string]*ViolationGroup
}

// ProbeCount is what one probed Service's client saw: its connections, how
// many failed, the isolated failures (one lost connection, not an outage),
// and the fault windows that excused outages.
type ProbeCount struct {
	Attempts, Failed int
	Isolated         []time.Time
	Windows          int
}

// ViolationGroup is one violation seen Count times, first at First.
type ViolationGroup struct {
	First Violation
	Last  time.Time
	Count int
}

func newReport(o Options) *Report {
	return &Report{Seed: o.Seed, Duration: o.Duration, Rate: o.Rate, Faults: map[FaultKind]int{}, Ops: map[OpKind]int{},
		Checks: map[int]int{}, Probes: map[string]ProbeCount{}, Settle: o.Settle, FailoverBound: o.FailoverBound,
		index: map[string]*ViolationGroup{}}
}

// add records v and reports whether it is new.
func (r *Report) add(v Violation) bool {
	key := fmt.Sprintf("%d|%s|%s", v.Invariant, v.Subject, v.Kind)
	if g, ok := r.index[key]; ok {
		g.Count++
		g.Last = v.Time
		return false
	}
	g := &ViolationGroup{First: v, Last: v.Time, Count: 1}
	r.index[key] = g
	r.Violations = append(r.Violations, g)
	return true
}

// Failed reports whether any invariant was broken.
func (r *Report) Failed() bool { return len(r.Violations) > 0 }

// Write prints the report for people.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "soak: seed %d, %v of operations at %.2f/s (settle %v, failover bound %v); lab up in %v, %v in all\n",
		r.Seed, r.Duration, r.Rate, r.Settle, r.FailoverBound, r.LabUp, r.Elapsed)
	fmt.Fprintf(w, "operations: %s (%d refused or failed)\n", countsOf(r.Ops), len(r.OpErrors))
	fmt.Fprintf(w, "faults: %s\n", countsOf(r.Faults))
	fmt.Fprintf(w, "snapshots checked: %d (%d unreadable)\n", r.Snapshots, r.ObserveErrors)
	var checks []string
	for _, inv := range slices.Sorted(maps.Keys(InvariantNames)) {
		checks = append(checks, fmt.Sprintf("%d %s: %d", inv, InvariantNames[inv], r.Checks[inv]))
	}
	fmt.Fprintf(w, "checks: %s\n", strings.Join(checks, "; "))
	for _, k := range slices.Sorted(maps.Keys(r.Probes)) {
		p := r.Probes[k]
		fmt.Fprintf(w, "probe %s: %d connections, %d failed (%d fault windows); %d isolated failures",
			k, p.Attempts, p.Failed, p.Windows, len(p.Isolated))
		for _, t := range p.Isolated {
			fmt.Fprintf(w, " %s", t.UTC().Format("15:04:05.000"))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "restarts after an exit no fault caused: %d\n", len(r.Restarts))
	for _, e := range r.Restarts {
		fmt.Fprintf(w, "  restart: %s\n", e)
	}
	for _, e := range r.OpErrors {
		fmt.Fprintf(w, "  operation error: %s\n", e)
	}
	if len(r.Violations) == 0 {
		fmt.Fprintf(w, "violations: none\n")
		return
	}
	fmt.Fprintf(w, "violations: %d distinct (replay: -seed %d)\n", len(r.Violations), r.Seed)
	for _, g := range r.Violations {
		fmt.Fprintf(w, "  %s", g.First)
		if g.Count > 1 {
			fmt.Fprintf(w, " (seen %d times, last %s)", g.Count, g.Last.UTC().Format("15:04:05.000"))
		}
		fmt.Fprintln(w)
	}
}

func countsOf[K ~string](m map[K]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	total := 0
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		total += m[k]
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}
