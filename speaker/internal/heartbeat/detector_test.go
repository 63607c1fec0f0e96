package heartbeat

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	addrA = netip.MustParseAddr("198.51.100.11")
	addrB = netip.MustParseAddr("198.51.100.12")
)

// step is one event fed to a Detector at t0+at.
type step struct {
	at      time.Duration
	watch   map[string]netip.Addr // non-nil: Watch
	heard   string                // non-empty: Heard from heardAt (addrA by default)
	heardAt netip.Addr
	// answered non-zero: Answered from answered, to a probe sent at t0+sent.
	answered netip.Addr
	sent     time.Duration
	probe    bool // Silent(now, probeAfter) must return silent
	silent   []netip.Addr
	check    bool          // Check, with membership's live members below
	gone     []string      // members membership no longer counts
	want     []Change      // the changes Heard or Check returns
	dead     []string      // Dead() after the step, sorted
	next     time.Duration // Next() after the step, 0 for none
}

func TestDetector(t *testing.T) {
	const timeout, confirm, probeAfter, interval = 175 * time.Millisecond, 5 * time.Second, 58 * time.Millisecond, 25 * time.Millisecond
	watchA := map[string]netip.Addr{"a": addrA}
	tests := []struct {
		name   string
		probes int // Timing.Probes
		steps  []step
	}{
		{name: "never heard: never presumed", steps: []step{
			{at: 0, watch: watchA},
			{at: time.Minute, check: true},
		}},
		{name: "silent for the timeout: presumed", steps: []step{
			{at: 0, watch: watchA},
			{at: 10 * time.Millisecond, heard: "a", next: 185 * time.Millisecond},
			{at: 184 * time.Millisecond, check: true, next: 185 * time.Millisecond},
			{at: 185 * time.Millisecond, check: true, want: []Change{{Node: "a", Kind: Presumed, Silence: timeout}}, dead: []string{"a"},
				next: 185*time.Millisecond + confirm},
		}},
		{name: "heard before the watch began: not armed", steps: []step{
			{at: 0, watch: map[string]netip.Addr{"b": addrB}},
			{at: 1 * time.Millisecond, heard: "a"},
			{at: 2 * time.Millisecond, watch: watchA},
			{at: time.Second, check: true},
		}},
		{name: "heartbeat from another address: ignored", steps: []step{
			{at: 0, watch: watchA},
			{at: 1 * time.Millisecond, heard: "a", heardAt: addrB},
			{at: time.Second, check: true},
		}},
		{name: "a heartbeat clears the verdict", steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 200 * time.Millisecond, check: true, want: []Change{{Node: "a", Kind: Presumed, Silence: 200 * time.Millisecond}}, dead: []string{"a"},
				next: 200*time.Millisecond + confirm},
			{at: 250 * time.Millisecond, heard: "a", want: []Change{{Node: "a", Kind: Cleared, Silence: 50 * time.Millisecond}},
				next: 425 * time.Millisecond},
		}},
		{name: "membership agrees: verdict handed over, node disarmed", steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 200 * time.Millisecond, check: true, want: []Change{{Node: "a", Kind: Presumed, Silence: 200 * time.Millisecond}}, dead: []string{"a"},
				next: 200*time.Millisecond + confirm},
			{at: 900 * time.Millisecond, check: true, gone: []string{"a"}, want: []Change{{Node: "a", Kind: Confirmed, Silence: 700 * time.Millisecond}}},
			{at: time.Minute, check: true},
		}},
		{name: "membership disagrees: the verdict expires, the node is disarmed until heard", steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 200 * time.Millisecond, check: true, want: []Change{{Node: "a", Kind: Presumed, Silence: 200 * time.Millisecond}}, dead: []string{"a"},
				next: 200*time.Millisecond + confirm},
			{at: 200*time.Millisecond + confirm, check: true, want: []Change{{Node: "a", Kind: Expired, Silence: confirm}}},
			{at: time.Minute, check: true},
			{at: time.Minute, heard: "a", next: time.Minute + timeout},
			{at: time.Minute + timeout, check: true, want: []Change{{Node: "a", Kind: Presumed, Silence: timeout}}, dead: []string{"a"},
				next: time.Minute + timeout + confirm},
		}},
		{name: "no longer watched: the verdict stays until a heartbeat", steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 200 * time.Millisecond, check: true, want: []Change{{Node: "a", Kind: Presumed, Silence: 200 * time.Millisecond}}, dead: []string{"a"},
				next: 200*time.Millisecond + confirm},
			{at: 210 * time.Millisecond, watch: map[string]netip.Addr{}, dead: []string{"a"}, next: 200*time.Millisecond + confirm},
			{at: 300 * time.Millisecond, heard: "a", want: []Change{{Node: "a", Kind: Cleared, Silence: 100 * time.Millisecond}}},
			{at: time.Minute, check: true},
		}},
		{name: "probed once silent for probeAfter, not before, not once presumed", steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 57 * time.Millisecond, probe: true, next: timeout},
			{at: 58 * time.Millisecond, probe: true, silent: []netip.Addr{addrA}, next: timeout},
			{at: timeout, check: true, want: []Change{{Node: "a", Kind: Presumed, Silence: timeout}}, dead: []string{"a"},
				next: timeout + confirm},
			{at: 200 * time.Millisecond, probe: true, dead: []string{"a"}, next: timeout + confirm},
		}},
		{name: "its kernel answers through the silence: spared, then disarmed at the confirm time", steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 100 * time.Millisecond, answered: addrA, sent: 100 * time.Millisecond, next: timeout},
			{at: timeout, check: true, want: []Change{{Node: "a", Kind: Spared, Silence: timeout}}, next: 275 * time.Millisecond},
			{at: 251 * time.Millisecond, answered: addrA, sent: 250 * time.Millisecond, next: 425 * time.Millisecond},
			{at: 275 * time.Millisecond, check: true, next: 425 * time.Millisecond},
		}},
		{name: "spared, answering until the confirm time: disarmed without a verdict", steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 100 * time.Millisecond, answered: addrA, sent: 100 * time.Millisecond, next: timeout},
			{at: timeout, check: true, want: []Change{{Node: "a", Kind: Spared, Silence: timeout}}, next: 275 * time.Millisecond},
			{at: 4900 * time.Millisecond, answered: addrA, sent: 4900 * time.Millisecond, next: confirm},
			{at: confirm, check: true},
			{at: time.Minute, probe: true, check: true},
			{at: time.Minute, heard: "a", next: time.Minute + timeout},
		}},
		{name: "its kernel falls silent too: presumed a timeout after its last answer", steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 151 * time.Millisecond, answered: addrA, sent: 150 * time.Millisecond, next: timeout},
			{at: timeout, check: true, want: []Change{{Node: "a", Kind: Spared, Silence: timeout}}, next: 325 * time.Millisecond},
			{at: 325 * time.Millisecond, check: true, want: []Change{{Node: "a", Kind: Presumed, Silence: 325 * time.Millisecond}}, dead: []string{"a"},
				next: 325*time.Millisecond + confirm},
		}},
		{name: "answers that do not count: a probe sent before the last heartbeat, another address", steps: []step{
			{at: 0, watch: watchA},
			{at: 100 * time.Millisecond, heard: "a", next: 275 * time.Millisecond},
			{at: 110 * time.Millisecond, answered: addrA, sent: 90 * time.Millisecond, next: 275 * time.Millisecond},
			{at: 200 * time.Millisecond, answered: addrB, sent: 200 * time.Millisecond, next: 275 * time.Millisecond},
			{at: 275 * time.Millisecond, check: true, want: []Change{{Node: "a", Kind: Presumed, Silence: timeout}}, dead: []string{"a"},
				next: 275*time.Millisecond + confirm},
		}},
		{name: "an answer after the verdict does not clear it; a heartbeat does", steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: timeout, check: true, want: []Change{{Node: "a", Kind: Presumed, Silence: timeout}}, dead: []string{"a"}, next: timeout + confirm},
			{at: 200 * time.Millisecond, answered: addrA, sent: 190 * time.Millisecond, dead: []string{"a"}, next: timeout + confirm},
			{at: 210 * time.Millisecond, check: true, dead: []string{"a"}, next: timeout + confirm},
			{at: 250 * time.Millisecond, heard: "a", want: []Change{{Node: "a", Kind: Cleared, Silence: 75 * time.Millisecond}}, next: 425 * time.Millisecond},
		}},
		{name: "probing: presumed at the timeout, four probes unanswered", probes: 4, steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 60 * time.Millisecond, probe: true, silent: []netip.Addr{addrA}, next: timeout},
			{at: 85 * time.Millisecond, probe: true, silent: []netip.Addr{addrA}, next: timeout},
			{at: 110 * time.Millisecond, probe: true, silent: []netip.Addr{addrA}, next: timeout},
			{at: 135 * time.Millisecond, probe: true, silent: []netip.Addr{addrA}, next: timeout},
			{at: timeout, check: true, want: []Change{{Node: "a", Kind: Presumed, Silence: timeout}}, dead: []string{"a"},
				next: timeout + confirm},
		}},
		{name: "probing: a watcher that sent no probes (starved) waits for four before presuming", probes: 4, steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 400 * time.Millisecond, check: true, next: timeout},
			{at: 401 * time.Millisecond, probe: true, silent: []netip.Addr{addrA}, next: 426 * time.Millisecond},
			{at: 426 * time.Millisecond, probe: true, check: true, silent: []netip.Addr{addrA}, next: 451 * time.Millisecond},
			{at: 451 * time.Millisecond, probe: true, check: true, silent: []netip.Addr{addrA}, next: 476 * time.Millisecond},
			{at: 476 * time.Millisecond, probe: true, check: true, silent: []netip.Addr{addrA},
				want: []Change{{Node: "a", Kind: Presumed, Silence: 476 * time.Millisecond}}, dead: []string{"a"}, next: 476*time.Millisecond + confirm},
		}},
		{name: "probing: the starved watcher's late probe is answered: spared", probes: 4, steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 400 * time.Millisecond, check: true, next: timeout},
			{at: 401 * time.Millisecond, probe: true, silent: []netip.Addr{addrA}, next: 426 * time.Millisecond},
			{at: 402 * time.Millisecond, answered: addrA, sent: 401 * time.Millisecond, next: timeout},
			{at: 402 * time.Millisecond, check: true, want: []Change{{Node: "a", Kind: Spared, Silence: 402 * time.Millisecond}},
				next: 576 * time.Millisecond},
		}},
		{name: "a new address disarms", steps: []step{
			{at: 0, watch: watchA},
			{at: 0, heard: "a", next: timeout},
			{at: 100 * time.Millisecond, watch: map[string]netip.Addr{"a": addrB}},
			{at: time.Second, check: true},
		}},
	}
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDetector(Timing{Timeout: timeout, Confirm: confirm, Probes: tt.probes, ProbeInterval: interval})
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				var got []Change
				switch {
				case s.watch != nil:
					d.Watch(s.watch, now)
				case s.heard != "":
					from := s.heardAt
					if !from.IsValid() {
						from = addrA
					}
					if c, ok := d.Heard(s.heard, from, now); ok {
						got = append(got, c)
					}
				case s.answered.IsValid():
					d.Answered(s.answered, t0.Add(s.sent))
				case s.probe:
					if diff := cmp.Diff(s.silent, d.Probe(now, probeAfter), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
						t.Errorf("step %d: Silent() (-want +got):\n%s", i, diff)
					}
				}
				if s.check {
					got = d.Check(now, func(n string) bool { return !slices.Contains(s.gone, n) })
				}
				if diff := cmp.Diff(s.want, got); diff != "" {
					t.Errorf("step %d: changes (-want +got):\n%s", i, diff)
				}
				var dead []string
				for n := range d.Dead() {
					dead = append(dead, n)
				}
				slices.Sort(dead)
				if diff := cmp.Diff(s.dead, dead); diff != "" {
					t.Errorf("step %d: Dead() (-want +got):\n%s", i, diff)
				}
				next, ok := d.Next()
				if want := s.next; (want != 0) != ok || (ok && !next.Equal(t0.Add(want))) {
					t.Errorf("step %d: Next() = %v, %v; want t0+%v", i, next.Sub(t0), ok, want)
				}
			}
		})
	}
}
