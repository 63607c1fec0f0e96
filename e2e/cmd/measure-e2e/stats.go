package main

import (
	"fmt"
	"slices"
	"time"
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
