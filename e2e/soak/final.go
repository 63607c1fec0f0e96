package soak

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
)

// FinalCheck runs the soak's invariants once over a lab left alone (no
// change under way), as the end of the e2e suite does: every Service of
// every namespace, two API snapshots settle apart, then the wire. Besides the
// addresses Services hold, it asks the client about every address of silent
// (nobody holds them, so nobody may answer). A node is usable unless its
// speaker is stopped, it is labelled productlab.ExcludeLabel, or it is
// NetworkUnavailable; every pool in the lab's layer-2 range must have an
// L2Advertisement for all nodes, and every pool in its routed range a
// BGPAdvertisement.
func FinalCheck(ctx context.Context, l *productlab.Lab, settle time.Duration, silent []netip.Addr) ([]Violation, error) {
	c := NewChecker(Config{Settle: settle,
		L2:  []netip.Prefix{netlab.L2PoolV4, netlab.L2PoolV6},
		BGP: []netip.Prefix{netlab.RoutedPoolV4, netlab.RoutedPoolV6}})
	obs := &Observer{Lab: l}
	first, err := obs.API(ctx)
	if err != nil {
		return nil, err
	}
	if first.Nodes, err = usableNodes(ctx, l); err != nil {
		return nil, err
	}
	vs := c.Observe(first)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(settle + 500*time.Millisecond):
	}
	snap, err := obs.API(ctx)
	if err != nil {
		return nil, err
	}
	if snap.Nodes, err = usableNodes(ctx, l); err != nil {
		return nil, err
	}
	targets := c.L2Targets(snap)
	held := map[netip.Addr]bool{}
	for _, a := range targets {
		held[a] = true
	}
	for _, a := range silent {
		if !held[a] {
			targets = append(targets, a)
			// Nobody holds it: it counts as released before the first snapshot.
			c.released[a] = first.Time.Add(-settle)
		}
	}
	obs.Wire(ctx, &snap, targets, true)
	if snap.Wire.L2 == nil {
		return nil, fmt.Errorf("soak: final check: the API could not be read after the wire")
	}
	return append(vs, c.Observe(snap)...), nil
}

// usableNodes reads which nodes may announce: a running speaker, no
// exclusion label, not NetworkUnavailable.
func usableNodes(ctx context.Context, l *productlab.Lab) ([]Node, error) {
	var out []Node
	for _, n := range l.Cluster.Nodes {
		obj, err := l.Kube.CoreV1().Nodes().Get(ctx, n.Name(), metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("soak: get node %s: %w", n.Name(), err)
		}
		_, excluded := obj.Labels[productlab.ExcludeLabel]
		unavailable := false
		for _, cond := range obj.Status.Conditions {
			if cond.Type == corev1.NodeNetworkUnavailable && cond.Status == corev1.ConditionTrue {
				unavailable = true
			}
		}
		p := l.Speaker(n)
		out = append(out, Node{Name: n.Name(), Usable: p != nil && !p.Exited() && !excluded && !unavailable})
	}
	return out, nil
}
