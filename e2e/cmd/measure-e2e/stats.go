package main

import (
	"fmt"
	"slices"
	"strings"
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
}

func (r *result) add(d time.Duration) { r.ds = append(r.ds, d) }

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
