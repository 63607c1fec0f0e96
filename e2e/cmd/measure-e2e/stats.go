package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/herald-dev/herald/e2e/productlab"
)

// result is one measurement's samples.
type result struct {
	name   string
	target string
	ds     []time.Duration
	// lost counts trials in which the client never recovered within the
	// trial's limit; they are not in ds.
	lost int
	// conns counts the connections attempted after the trials' events
	// when counted (see count): how many, how many failed and were reset,
	// and in how many trials some failed.
	conns, failed, reset, troubled int
}

func (r *result) add(d time.Duration) { r.ds = append(r.ds, d) }

// record adds a trial's outcome to r: its attempts as, its event, and
// whether the client recovered within limit. It returns the trial's
// description: its outage and how many probes failed, or that the client did
// not recover.
func (r *result) record(as []productlab.Attempt, event time.Time, ok bool, limit time.Duration) string {
	d, _ := productlab.LongestOutage(as, event)
	failed := productlab.FailedAfter(as, event)
	r.count(as, event)
	if !ok {
		r.lost++
		return fmt.Sprintf("client NOT recovered within %v (%d of %d probes failed)", limit, failed, len(as))
	}
	r.add(d)
	return fmt.Sprintf("client outage %s (%d of %d probes failed)", ms(d), failed, len(as)) + failureDetail(as, event)
}

// count adds a trial's attempts begun after event to r's connection counts.
func (r *result) count(as []productlab.Attempt, event time.Time) {
	failed := 0
	for _, a := range as {
		if !a.Start.After(event) {
			continue
		}
		r.conns++
		if !a.OK() {
			failed++
			if errors.Is(a.Err, syscall.ECONNRESET) {
				r.reset++
			}
		}
	}
	r.failed += failed
	if failed > 0 {
		r.troubled++
	}
}

// connections describes r's connection counts, or "" when none were counted.
func (r *result) connections() string {
	if r.conns == 0 {
		return ""
	}
	return fmt.Sprintf("%s: %d of %d trials with a failed connection; %d of %d connections failed, %d of them reset",
		r.name, r.troubled, len(r.ds)+r.lost, r.failed, r.conns, r.reset)
}

// percentile returns the nearest-rank percentile p (0-100) of ds: with 20
// samples, p99 is the largest.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// row renders the result as a Markdown table row.
func (r *result) row() string {
	trials := fmt.Sprint(len(r.ds))
	if r.lost > 0 {
		trials += fmt.Sprintf(" (+%d never recovered)", r.lost)
	}
	if len(r.ds) == 0 {
		return fmt.Sprintf("| %s | %s | - | - | - | %s |", r.name, trials, r.target)
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", r.name, trials,
		ms(percentile(r.ds, 50)), ms(percentile(r.ds, 99)), ms(slices.Max(r.ds)), r.target)
}

// failureDetail describes the failed attempts after event: when the first and
// the last started, relative to event, and why the first failed; "" when none
// failed.
func failureDetail(as []productlab.Attempt, event time.Time) string {
	var first, last productlab.Attempt
	for _, a := range as {
		if a.OK() || !a.Start.After(event) {
			continue
		}
		if first.Start.IsZero() {
			first = a
		}
		last = a
	}
	if first.Start.IsZero() {
		return ""
	}
	why := first.Err.Error()
	if i := strings.LastIndex(why, ": "); i >= 0 {
		why = why[i+2:]
	}
	return fmt.Sprintf("; failures started +%s to +%s after the event, the first: %s",
		ms(first.Start.Sub(event)), ms(last.Start.Sub(event)), why)
}
