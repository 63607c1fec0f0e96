package soak

import (
	"fmt"
	"time"
)

// Attempt is one connection a prober made to a probed Service.
type Attempt struct {
	Start time.Time
	OK    bool
	Err   string
}

// Window is a time when a fault hit a node carrying a probed Service: from
// Start to End (End equals Start for a fault that is a single event, such as
// a killed speaker).
type Window struct {
	Start, End time.Time
	What       string
}

// Outages is invariant 7 for one probed Service (target names it): it
// returns each outage, a run of at least two failed attempts (from the start
// of its first failed attempt to the start of the next successful one), that
// does not lie within a window, widened by slack before (a connection started
// just before a fault fails with it) and by bound after (the failover bound).
// A failed attempt alone, between two that succeeded an interval before and
// after, is a lost packet rather than an outage: isolated returns the start
// of each one outside the windows.
func Outages(target string, as []Attempt, windows []Window, slack, bound time.Duration) (out []Violation, isolated []time.Time) {
	var run []Attempt
	flush := func(end time.Time, recovered bool) {
		if len(run) == 0 {
			return
		}
		start := run[0].Start
		if !recovered {
			end = run[len(run)-1].Start
		}
		for _, w := range windows {
			if !start.Before(w.Start.Add(-slack)) && !end.After(w.End.Add(bound)) {
				return
			}
		}
		if len(run) == 1 && recovered {
			isolated = append(isolated, run[0].Start)
			return
		}
		detail := fmt.Sprintf("%d failed connections over %v (first: %s)", len(run), end.Sub(start).Round(time.Millisecond), run[0].Err)
		if !recovered {
			detail += "; no success after it"
		}
		out = append(out, Violation{Time: start, Invariant: InvOutage, Subject: target, Kind: "outage",
			Objects: []string{target}, Detail: detail})
	}
	for _, a := range as {
		if a.OK {
			flush(a.Start, true)
			run = nil
			continue
		}
		run = append(run, a)
	}
	flush(time.Time{}, false)
	return out, isolated
}
