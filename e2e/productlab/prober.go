package productlab

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
)

// Attempt is one TCP connection the prober made.
type Attempt struct {
	// Start is when the connection was attempted.
	Start time.Time
	// Pod answered (or what the connect function of StartProberFunc
	// returned), empty when the attempt failed.
	Pod string
	// Err is why the attempt failed.
	Err error
}

// OK reports whether the attempt reached a pod.
func (a Attempt) OK() bool { return a.Err == nil }

// Prober opens a new TCP connection from a host to a target every Interval (each
// with Timeout) and records every attempt, until Stop. It is how the suite and
// the measurements observe an outage as a client would: by connections that fail.
type Prober struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	attempts []Attempt
}

// Probe starts a prober from the lab's client to addr:port, a connection every
// interval with timeout each.
func (l *Lab) Probe(addr netip.Addr, port int, interval, timeout time.Duration) *Prober {
	return StartProber(l.Client, netip.AddrPortFrom(addr, uint16(port)), interval, timeout)
}

// StartProber starts a prober from h to target; an attempt's Pod is the pod
// that answered.
func StartProber(h *netlab.Host, target netip.AddrPort, interval, timeout time.Duration) *Prober {
	return StartProberFunc(func(ctx context.Context) (string, error) {
		r, err := h.ConnectPod(ctx, target)
		return r.Pod, err
	}, interval, timeout)
}

// StartProberFunc starts a prober that calls connect every interval (each
// call on its own, with timeout) and records what it returns as the
// attempt's Pod: for servers that do not answer as a pod does.
func StartProberFunc(connect func(context.Context) (string, error), interval, timeout time.Duration) *Prober {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Prober{cancel: cancel}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			p.wg.Add(1)
			go func(start time.Time) {
				defer p.wg.Done()
				actx, acancel := context.WithTimeout(ctx, timeout)
				defer acancel()
				reply, err := connect(actx)
				if ctx.Err() != nil {
					return // stopped: not an attempt of the experiment
				}
				p.mu.Lock()
				p.attempts = append(p.attempts, Attempt{Start: start, Pod: reply, Err: err})
				p.mu.Unlock()
			}(time.Now())
		}
	}()
	return p
}

// Stop stops the prober and returns every attempt, in start order.
func (p *Prober) Stop() []Attempt {
	p.cancel()
	p.wg.Wait()
	return p.Attempts()
}

// Attempts returns the attempts so far, in start order.
func (p *Prober) Attempts() []Attempt {
	p.mu.Lock()
	defer p.mu.Unlock()
	as := slices.Clone(p.attempts)
	slices.SortFunc(as, func(a, b Attempt) int { return a.Start.Compare(b.Start) })
	return as
}

// Failed returns the attempts that did not reach a pod.
func Failed(as []Attempt) []Attempt {
	return slices.DeleteFunc(slices.Clone(as), Attempt.OK)
}

// Outage returns the client-observed outage around an event at t: from the start of
// the last successful attempt before t to the start of the first successful
// attempt after t, less one probing interval (so that a run of successes, one
// every interval, is an outage of 0). ok is false when no attempt succeeded after t.
func Outage(as []Attempt, t time.Time, interval time.Duration) (d time.Duration, ok bool) {
	var last, first time.Time
	for _, a := range as {
		if !a.OK() {
			continue
		}
		if !a.Start.After(t) {
			last = a.Start
		} else if first.IsZero() {
			first = a.Start
		}
	}
	if first.IsZero() {
		return 0, false
	}
	if last.IsZero() {
		last = t
	}
	return max(first.Sub(last)-interval, 0), true
}
