package productlab

import (
	"errors"
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
