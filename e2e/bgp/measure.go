package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-dev/herald/e2e/netlab"
	speakerbgp "github.com/herald-dev/herald/speaker/bgp"
)

// Durations summarises measured durations.
type Durations []time.Duration

// Percentile returns the p-th percentile (0 < p <= 100) by the nearest-rank
// method: with 20 samples, p99 is the largest.
func (d Durations) Percentile(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}

// String formats the summary: count, min, p50, p99, max.
func (d Durations) String() string {
	if len(d) == 0 {
		return "no samples"
	}
	r := func(x time.Duration) time.Duration { return x.Round(time.Millisecond) }
	return fmt.Sprintf("n=%d min=%v p50=%v p99=%v max=%v", len(d), r(d.Percentile(0)), r(d.Percentile(50)), r(d.Percentile(99)), r(d.Percentile(100)))
}

// FailureResult is what MeasureFailure measured: from the failure to the
// failed node's next hop leaving FRR's BGP table, and leaving the router's
// kernel routing table (zebra installs the routes).
type FailureResult struct {
	BGPTable, Kernel Durations
}

// FailureOptions configure MeasureFailure.
type FailureOptions struct {
	Trials int
	// Cut takes the node off the LAN before killing its speaker (a node
	// failure); otherwise only the speaker is killed (a crash: its kernel
	// closes the TCP connection).
	Cut bool
	// BFD runs BFD with these timers; zero Enabled means none.
	BFD speakerbgp.BFD
	// HoldTime is the BGP hold time (keepalives a third of it).
	HoldTime time.Duration
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// MeasureFailure measures, over opts.Trials failures of node 1 while node 2
// keeps announcing the same route, how long FRR keeps node 1's next hop.
func MeasureFailure(t netlab.T, opts FailureOptions) FailureResult {
	t.Helper()
	l := NewLab(t, LabOptions{Nodes: 2})
	r, n1, n2 := l.Router(), l.Nodes[0], l.Nodes[1]
	keepalive := (opts.HoldTime / 3).Truncate(time.Second)
	r.StartBGP(netlab.BGPConfig{ASN: RouterASN, InstallRoutes: true, Neighbors: l.Neighbors(false, func(_ *Node, c *netlab.BGPNeighborConfig) {
		c.HoldTime, c.KeepaliveTime = opts.HoldTime, keepalive
		if opts.BFD.Enabled {
			c.BFD = true
			c.BFDMinRx, c.BFDMinTx, c.BFDMultiplier = opts.BFD.MinRx, opts.BFD.MinTx, int(opts.BFD.Multiplier)
		}
	})})
	desired := func(n *Node) speakerbgp.Desired {
		p := n.Peer("r1", r, false)
		p.HoldTime, p.KeepaliveTime, p.BFD = opts.HoldTime, keepalive, opts.BFD
		p.Routes = []speakerbgp.Route{{Prefix: hostRoute}}
		return speakerbgp.Desired{Peers: []speakerbgp.Peer{p}}
	}
	n2.Start(t, desired(n2))
	var res FailureResult
	for trial := range opts.Trials {
		if trial > 0 && opts.Cut {
			if err := n1.Links()[0].Attach(); err != nil {
				t.Fatalf("%v", err)
			}
		}
		n1.Start(t, desired(n1))
		WaitNextHops(t, r, hostRoute, 60*time.Second, n1.Addr4(), n2.Addr4())
		waitKernelNextHops(t, r, hostRoute, n1.Addr4(), n2.Addr4())
		if opts.BFD.Enabled {
			n1.WaitPeer(t, "r1", 30*time.Second, func(ps speakerbgp.PeerStatus) error {
				if ps.BFD != speakerbgp.BFDUp {
					return fmt.Errorf("BFD %q", ps.BFD)
				}
				return nil
			})
		}
		ctx, cancel := context.WithTimeout(t.Context(), 3*opts.HoldTime+30*time.Second)
		var wg sync.WaitGroup
		var bgpGone, kernelGone time.Time
		var bgpErr, kernelErr error
		wg.Add(2)
		start := make(chan struct{})
		go func() {
			defer wg.Done()
			<-start
			bgpGone, bgpErr = pollUntil(ctx, 0, func(ctx context.Context) (bool, error) {
				hops, err := SelectedNextHops(ctx, r, hostRoute)
				return err == nil && !slices.Contains(hops, n1.Addr4()), err
			})
		}()
		go func() {
			defer wg.Done()
			<-start
			kernelGone, kernelErr = pollUntil(ctx, 2*time.Millisecond, func(ctx context.Context) (bool, error) {
				hops, err := r.KernelNextHops(ctx, hostRoute)
				return err == nil && !slices.Contains(hops, n1.Addr4()), err
			})
		}()
		failed := time.Now()
		close(start)
		failure{cut: opts.Cut}.failNode(t, n1)
		wg.Wait()
		cancel()
		if bgpErr != nil || kernelErr != nil {
			t.Fatalf("trial %d: %v %v", trial+1, bgpErr, kernelErr)
		}
		res.BGPTable = append(res.BGPTable, bgpGone.Sub(failed))
		res.Kernel = append(res.Kernel, kernelGone.Sub(failed))
		if opts.Logf != nil {
			opts.Logf("trial %d/%d: BGP table %v, kernel %v", trial+1, opts.Trials,
				bgpGone.Sub(failed).Round(time.Millisecond), kernelGone.Sub(failed).Round(time.Millisecond))
		}
	}
	return res
}

// failure is how a node fails.
type failure struct {
	name string
	// cut takes the node off the LAN before its speaker is killed, as when
	// the node dies: no FIN or RST reaches the router.
	cut bool
}

// failNode makes n fail: SIGKILL to its speaker, after detaching its LAN
// port when f.cut.
func (f failure) failNode(t netlab.T, n *Node) {
	t.Helper()
	if f.cut {
		if err := n.Links()[0].Detach(); err != nil {
			t.Fatalf("%v", err)
		}
	}
	if err := n.Kill(); err != nil {
		t.Fatalf("%v", err)
	}
}

// pollUntil calls check back to back (sleeping interval between calls) until
// it returns true, and returns the time of the first true: the end of the
// call that saw it, which overestimates by at most one call.
func pollUntil(ctx context.Context, interval time.Duration, check func(context.Context) (bool, error)) (time.Time, error) {
	var lastErr error
	for {
		ok, err := check(ctx)
		now := time.Now()
		if ok {
			return now, nil
		}
		if err != nil {
			lastErr = err
		}
		if ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		}
		if interval > 0 {
			time.Sleep(interval)
		}
	}
}

func waitKernelNextHops(t netlab.T, r *netlab.Router, prefix netip.Prefix, want ...netip.Addr) {
	t.Helper()
	slices.SortFunc(want, netip.Addr.Compare)
	netlab.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		got, err := r.KernelNextHops(ctx, prefix)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("router %s: kernel next hops of %s are %v, want %v", r.Name(), prefix, got, want)
		}
		return nil
	})
}

// ScaleResult is what MeasureScale measured.
type ScaleResult struct {
	// Converge is, per start, the time from starting the speaker to both
	// routers having accepted every prefix; SetDone the time until the
	// speaker's first Set returned; Established the time until both
	// sessions were Established (GoBGP makes its first connection attempt
	// 1.5 to 2 s after a peer is added).
	Converge, SetDone, Established Durations
	// RSS and HWM are the speaker's resident set size once converged and its
	// peak, in bytes, per start; HeapInuse and Sys are the Go runtime's.
	RSS, HWM, HeapInuse, Sys []uint64
	// IdleRSS is the resident set size of a speaker with the same two
	// sessions and no routes.
	IdleRSS uint64
	// Withdraw is, per trial, the time from asking a converged speaker (by
	// SIGHUP) to withdraw one prefix to both routers having dropped it from
	// their BGP tables (as vtysh shows them: one call takes 40-120 ms on the
	// shared machine, which bounds the resolution); WithdrawApplied is the
	// speaker's part: how long Set took, by the end of which GoBGP has
	// queued the withdrawal on both sessions (without reading and decoding
	// the state file).
	Withdraw, WithdrawApplied Durations
}

// ScaleOptions configure MeasureScale.
type ScaleOptions struct {
	Addresses      int
	Starts         int
	WithdrawTrials int
	Logf           func(format string, args ...any)
}

// scalePrefixes returns n IPv6 host routes in 2001:db8:300::/64 (the IPv4
// documentation ranges hold too few addresses).
func scalePrefixes(n int) []speakerbgp.Route {
	base := netip.MustParseAddr("2001:db8:300::").As16()
	out := make([]speakerbgp.Route, n)
	for i := range n {
		a := base
		a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		out[i] = speakerbgp.Route{Prefix: netip.PrefixFrom(netip.AddrFrom16(a), 128)}
	}
	return out
}

// MeasureScale measures a speaker advertising opts.Addresses IPv6 host routes
// to two routers over IPv6 sessions.
func MeasureScale(t netlab.T, opts ScaleOptions) ScaleResult {
	t.Helper()
	l := NewLab(t, LabOptions{Nodes: 1, Routers: 2})
	n := l.Nodes[0]
	for _, r := range l.Routers {
		r.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: l.Neighbors(true, nil)})
	}
	routes := scalePrefixes(opts.Addresses)
	desired := func(routes []speakerbgp.Route) speakerbgp.Desired {
		var d speakerbgp.Desired
		for i, r := range l.Routers {
			p := n.Peer(fmt.Sprintf("r%d", i+1), r, true)
			p.Routes = routes
			d.Peers = append(d.Peers, p)
		}
		return d
	}
	var res ScaleResult

	// A speaker with the sessions and no routes.
	n.Start(t, desired(nil))
	for i := range l.Routers {
		n.WaitPeer(t, fmt.Sprintf("r%d", i+1), 60*time.Second, Established)
	}
	if rss, _, err := procMemory(n.StartedProcess().Pid()); err == nil {
		res.IdleRSS = rss
	} else {
		t.Fatalf("%v", err)
	}

	for start := range opts.Starts {
		if err := n.Stop(); err != nil && opts.Logf != nil {
			opts.Logf("stopping the speaker: %v", err)
		}
		waitAccepted(t, l, n, 0, 60*time.Second)
		began := time.Now()
		n.Start(t, desired(routes))
		waitAccepted(t, l, n, opts.Addresses, 10*time.Minute)
		converged := time.Since(began)
		st, err := n.Status()
		if err != nil {
			t.Fatalf("%v", err)
		}
		rss, hwm, err := procMemory(n.StartedProcess().Pid())
		if err != nil {
			t.Fatalf("%v", err)
		}
		res.Converge = append(res.Converge, converged)
		res.SetDone = append(res.SetDone, st.Applied.Sub(st.Started))
		var established time.Time
		for _, ps := range st.Peers {
			if ps.Since.After(established) {
				established = ps.Since
			}
		}
		res.Established = append(res.Established, established.Sub(st.Started))
		res.RSS, res.HWM = append(res.RSS, rss), append(res.HWM, hwm)
		res.HeapInuse, res.Sys = append(res.HeapInuse, st.HeapInuse), append(res.Sys, st.Sys)
		if opts.Logf != nil {
			opts.Logf("start %d/%d: converged in %v (first Set returned after %v, sessions Established after %v); RSS %s, peak %s, Go heap in use %s",
				start+1, opts.Starts, converged.Round(time.Millisecond), st.Applied.Sub(st.Started).Round(time.Millisecond),
				res.Established[len(res.Established)-1].Round(time.Millisecond),
				mib(rss), mib(hwm), mib(st.HeapInuse))
		}
	}

	// Withdrawing one route of a converged speaker.
	for trial := range opts.WithdrawTrials {
		gone := routes[trial%len(routes)].Prefix
		kept := slices.DeleteFunc(slices.Clone(routes), func(r speakerbgp.Route) bool { return r.Prefix == gone })
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		times := make([]time.Time, len(l.Routers))
		errs := make([]error, len(l.Routers))
		var wg sync.WaitGroup
		startPolls := make(chan struct{})
		for i, r := range l.Routers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-startPolls
				times[i], errs[i] = pollUntil(ctx, 5*time.Millisecond, func(ctx context.Context) (bool, error) {
					_, ok, err := r.Route(ctx, gone)
					return err == nil && !ok, err
				})
			}()
		}
		began := time.Now()
		close(startPolls)
		n.Apply(t, desired(kept))
		wg.Wait()
		st, err := n.Status()
		if err != nil {
			t.Fatalf("%v", err)
		}
		applied := st.SetDuration
		cancel()
		last := began
		for i := range times {
			if errs[i] != nil {
				t.Fatalf("withdraw %v: %v", gone, errs[i])
			}
			if times[i].After(last) {
				last = times[i]
			}
		}
		res.Withdraw = append(res.Withdraw, last.Sub(began))
		res.WithdrawApplied = append(res.WithdrawApplied, applied)
		if opts.Logf != nil {
			opts.Logf("withdraw %d/%d: %v gone from both routers' BGP tables after %v (the speaker had applied it after %v)",
				trial+1, opts.WithdrawTrials, gone, last.Sub(began).Round(time.Millisecond), applied.Round(time.Millisecond))
		}
		n.Apply(t, desired(routes))
		waitAccepted(t, l, n, opts.Addresses, time.Minute)
	}
	return res
}

// waitAccepted waits until every router accepted want IPv6 prefixes from n.
func waitAccepted(t netlab.T, l *Lab, n *Node, want int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	_, err := pollUntil(ctx, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		for _, r := range l.Routers {
			nb, ok, err := r.Neighbor(ctx, n.Addr6())
			if err != nil || !ok {
				return false, err
			}
			if want > 0 && !nb.Established() || nb.AcceptedPrefixes["ipv6Unicast"] != want {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("waiting for the routers to accept %d prefixes from %s: %v", want, n.Name(), err)
	}
}

// procMemory returns a process's resident set size and its peak, in bytes.
func procMemory(pid int) (rss, hwm uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read the memory of process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s of process %d: %w", key, pid, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// MiB formats bytes in mebibytes.
func MiB(b uint64) string { return mib(b) }

// StabilityResult is what MeasureStability saw: how many times the router
// dropped the session and the speaker saw BFD fail, over how long.
type StabilityResult struct {
	Duration                 time.Duration
	RouterDrops, BFDFailures uint64
	// FirstDrops are the drops while the session first came up (docs/bgp.md:
	// one reset per session start against FRR); they are not in RouterDrops.
	FirstDrops uint64
}

// MeasureStability runs one node's session with BFD (opts.BFD, hold time
// opts.HoldTime) against FRR for d once it is up with BFD Up, and counts the
// session drops FRR records and the BFD failures the speaker counts: a
// flapping BFD shows as drops. opts.Trials is unused.
func MeasureStability(t netlab.T, opts FailureOptions, d time.Duration) StabilityResult {
	t.Helper()
	l := NewLab(t, LabOptions{Nodes: 1})
	r, n := l.Router(), l.Nodes[0]
	keepalive := (opts.HoldTime / 3).Truncate(time.Second)
	r.StartBGP(netlab.BGPConfig{ASN: RouterASN, Neighbors: l.Neighbors(false, func(_ *Node, c *netlab.BGPNeighborConfig) {
		c.HoldTime, c.KeepaliveTime = opts.HoldTime, keepalive
		c.BFD = true
		c.BFDMinRx, c.BFDMinTx, c.BFDMultiplier = opts.BFD.MinRx, opts.BFD.MinTx, int(opts.BFD.Multiplier)
	})})
	p := n.Peer("r1", r, false)
	p.HoldTime, p.KeepaliveTime, p.BFD = opts.HoldTime, keepalive, opts.BFD
	p.Routes = []speakerbgp.Route{{Prefix: hostRoute}}
	n.Start(t, speakerbgp.Desired{Peers: []speakerbgp.Peer{p}})
	before := n.WaitPeer(t, "r1", 90*time.Second, func(ps speakerbgp.PeerStatus) error {
		if ps.State != speakerbgp.StateEstablished || ps.BFD != speakerbgp.BFDUp {
			return fmt.Errorf("state %s, BFD %q", ps.State, ps.BFD)
		}
		return nil
	})
	first, _, err := r.Neighbor(t.Context(), n.Addr4())
	if err != nil {
		t.Fatalf("%v", err)
	}
	start := time.Now()
	var last netlab.BGPNeighbor
	for time.Since(start) < d {
		select {
		case <-t.Context().Done():
			t.Fatalf("interrupted")
		case <-time.After(10 * time.Second):
		}
		if last, _, err = r.Neighbor(t.Context(), n.Addr4()); err != nil {
			t.Fatalf("%v", err)
		}
		if opts.Logf != nil {
			opts.Logf("%v: router %s, BFD %s, drops %d", time.Since(start).Round(time.Second), last.State, last.BFDStatus, last.ConnectionsDropped-first.ConnectionsDropped)
		}
	}
	after := n.WaitPeer(t, "r1", time.Second, func(speakerbgp.PeerStatus) error { return nil })
	return StabilityResult{
		Duration:    time.Since(start),
		RouterDrops: uint64(last.ConnectionsDropped - first.ConnectionsDropped),
		BFDFailures: after.Counters.BFDFailures - before.Counters.BFDFailures,
		FirstDrops:  uint64(first.ConnectionsDropped),
	}
}
