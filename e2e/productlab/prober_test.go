package productlab

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestOutage(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int, ok bool) Attempt {
		a := Attempt{Start: t0.Add(time.Duration(ms) * time.Millisecond)}
		if !ok {
			a.Err = errors.New("refused")
		}
		return a
	}
	const iv = 10 * time.Millisecond
	tests := []struct {
		name   string
		as     []Attempt
		event  int
		want   time.Duration
		wantOK bool
	}{
		{"no failure", []Attempt{at(0, true), at(10, true), at(20, true), at(30, true)}, 15, 0, true},
		{"three failures", []Attempt{at(0, true), at(10, false), at(20, false), at(30, false), at(40, true)}, 5, 30 * time.Millisecond, true},
		{"failures before the event count from the last success", []Attempt{at(0, true), at(10, false), at(20, false), at(30, true)}, 25, 20 * time.Millisecond, true},
		{"no success after", []Attempt{at(0, true), at(10, false)}, 5, 0, false},
		{"no success before counts from the event", []Attempt{at(0, false), at(10, false), at(100, true)}, 20, 70 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Outage(tt.as, t0.Add(time.Duration(tt.event)*time.Millisecond), iv)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Outage = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestLinesBetween(t *testing.T) {
	log := `# hl0-n1: herald-speaker --node=node1
time=2026-12-06T13:43:00.231Z level=INFO msg="speaker gone" member=node3
time=2026-12-06T13:43:03.126Z level=INFO msg="speaker joined" member=node3
  a continuation line without a stamp
time=2026-12-06T13:43:06.359Z level=INFO msg="layer-2 announcement changed" address=198.51.100.144 gained=true
time=2026-12-06T13:43:09.000Z level=INFO msg="layer-2 announcement changed" address=198.51.100.145 gained=true
{"time":"2026-12-06T13:43:07.5Z","level":"INFO","msg":"speaker gone","member":"node2"}
`
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name     string
		from, to string
		substrs  []string
		want     []string
	}{
		{"window, every line", "2026-12-06T13:43:00Z", "2026-12-06T13:43:03.126Z", nil,
			[]string{`time=2026-12-06T13:43:00.231Z level=INFO msg="speaker gone" member=node3`, `time=2026-12-06T13:43:03.126Z level=INFO msg="speaker joined" member=node3`}},
		{"window and substrings", "2026-12-06T13:43:00Z", "2026-12-06T13:43:10Z", []string{"198.51.100.144", "gone"},
			[]string{`time=2026-12-06T13:43:00.231Z level=INFO msg="speaker gone" member=node3`, `time=2026-12-06T13:43:06.359Z level=INFO msg="layer-2 announcement changed" address=198.51.100.144 gained=true`,
				`{"time":"2026-12-06T13:43:07.5Z","level":"INFO","msg":"speaker gone","member":"node2"}`}},
		{"nothing in the window", "2026-12-06T13:44:00Z", "2026-12-06T13:45:00Z", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := linesBetween(log, at(tc.from), at(tc.to), tc.substrs)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}
