// Command measure-bgp-reaction measures how fast the herald-speaker binary
// withdraws a BGP route when its node stops being eligible (run as root,
// from the e2e module):
//
//	go run ./cmd/measure-bgp-reaction [-trials 30]
//
// It starts a control plane, three node hosts running herald-speaker (see
// package speakerlab) and an FRR router peering with each (password from a
// Secret), and a Local-policy Service in the routed pool with its only
// endpoint on node1. A trial writes the EndpointSlice without the endpoint
// (the last local endpoint gone) and polls the router's BGP table
// ("show bgp ipv4 unicast <prefix> json" through vtysh, back to back) until
// the route is gone: the time reported runs from just before the API write
// to the first poll without the route, so it includes the write, the watch,
// the speaker's reconcile, the UPDATE and one vtysh poll (the resolution,
// also reported). The endpoint is then put back and the route awaited
// (reported as "re-advertised").
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
)

func main() {
	trials := flag.Int("trials", 30, "trials")
	dir := flag.String("dir", "", "directory for logs (default a temporary one)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dir == "" {
		d, err := os.MkdirTemp("", "measure-bgp-reaction-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*dir = d
	}
	sess, err := netlab.NewSession(ctx, "measure-bgp-reaction", *dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer sess.Close()
	lab := speakerlab.New(sess, speakerlab.Options{Dir: filepath.Join(*dir, "logs")})
	fmt.Printf("lab up; logs in %s\n", *dir)
	r, err := lab.StartRouter(ctx, "measure-secret")
	if err != nil {
		sess.Fatalf("%v", err)
	}
	addr := speakerlab.RoutedAddr(5)
	prefix := netip.PrefixFrom(addr, 32)
	if err := lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "bgp-reaction", Local: true, Addresses: []netip.Addr{addr}}); err != nil {
		sess.Fatalf("%v", err)
	}
	node1 := []netip.Addr{lab.Node("node1").Addr4}

	var withdrawn, readvertised, polls []time.Duration
	for i := range *trials {
		start := time.Now()
		if err := lab.SetEndpoints(ctx, "bgp-reaction", discoveryv1.AddressTypeIPv4, speakerlab.EndpointState{Node: "node1"}); err != nil {
			sess.Fatalf("%v", err)
		}
		if _, _, err := waitHops(ctx, r, prefix, node1, start, 60*time.Second); err != nil {
			sess.Fatalf("trial %d: route not advertised: %v\n%s", i, err, lab.Logs())
		}
		if i > 0 {
			readvertised = append(readvertised, time.Since(start))
		}
		time.Sleep(200 * time.Millisecond)
		start = time.Now()
		if err := lab.SetEndpoints(ctx, "bgp-reaction", discoveryv1.AddressTypeIPv4); err != nil {
			sess.Fatalf("%v", err)
		}
		took, poll, err := waitHops(ctx, r, prefix, nil, start, 10*time.Second)
		if err != nil {
			sess.Fatalf("trial %d: route not withdrawn: %v\n%s", i, err, lab.Logs())
		}
		withdrawn = append(withdrawn, took)
		polls = append(polls, poll)
		fmt.Printf("trial %d: withdrawn after %v (poll %v)\n", i+1, took.Round(time.Millisecond), poll.Round(time.Millisecond))
	}
	fmt.Println()
	fmt.Println("| measurement | trials | p50 | p99 | max |")
	fmt.Println("|---|---|---|---|---|")
	fmt.Println(row("last local endpoint gone -> route gone from FRR", withdrawn))
	fmt.Println(row("endpoint back -> route in FRR", readvertised))
	fmt.Println(row("one vtysh poll (resolution)", polls))
}

// waitHops polls r until its next hops to prefix are want, returning the
// time from start to the first matching poll and that poll's duration.
func waitHops(ctx context.Context, r *netlab.Router, prefix netip.Prefix, want []netip.Addr, start time.Time, timeout time.Duration) (time.Duration, time.Duration, error) {
	var last []netip.Addr
	for time.Since(start) < timeout {
		p := time.Now()
		got, err := speakerlab.NextHops(ctx, r, prefix)
		if err != nil {
			return 0, 0, err
		}
		if slices.Equal(got, want) {
			return time.Since(start), time.Since(p), nil
		}
		last = got
	}
	return 0, 0, fmt.Errorf("%v via %v after %v, want %v", prefix, last, timeout, want)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}

func row(name string, ds []time.Duration) string {
	if len(ds) == 0 {
		return fmt.Sprintf("| %s | 0 | | | |", name)
	}
	f := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("| %s | %d | %s | %s | %s |", name, len(ds), f(percentile(ds, 50)), f(percentile(ds, 99)), f(slices.Max(ds)))
}
