// Package speaker_test runs the herald-speaker binary on three node hosts of
// a network lab against a real control plane, and checks from a client
// host, with arping, ndisc6 and TCP, that exactly the right node answers.
package speaker_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
	"github.com/herald-dev/herald/speaker"
)

const (
	v4 = discoveryv1.AddressTypeIPv4
	v6 = discoveryv1.AddressTypeIPv6
)

// lbAddr returns the i-th address of the lab's layer-2 pool of a family.
func lbAddr(family discoveryv1.AddressType, i int) netip.Addr {
	a := netlab.L2PoolV4.Addr()
	if family == v6 {
		a = netlab.L2PoolV6.Addr()
	}
	for range i {
		a = a.Next()
	}
	return a
}

// answeredBy waits until exactly the nodes in want (none: nobody) answer
// for addr from the client.
func answeredBy(t *testing.T, lab *speakerlab.Lab, addr netip.Addr, timeout time.Duration, want ...string) {
	t.Helper()
	slices.Sort(want)
	var last []string
	err := netlab.Poll(t.Context(), timeout, 200*time.Millisecond, func(ctx context.Context) error {
		got, err := lab.Answering(ctx, addr)
		if err != nil {
			return err
		}
		last = got
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s answered by %v, want %v", addr, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after %v: %v (last answer %v)\n%s", timeout, err, last, lab.Logs())
	}
}

// statusShows waits until the SpeakerStatus records list addr for service
// on exactly the nodes in want.
func statusShows(t *testing.T, lab *speakerlab.Lab, addr netip.Addr, service string, want ...string) {
	t.Helper()
	netlab.Eventually(t, 10*time.Second, func(ctx context.Context) error {
		got, err := lab.StatusAnnouncers(ctx, addr, service)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("SpeakerStatus lists %s for %s on %v, want %v", addr, service, got, want)
		}
		return nil
	})
}

func TestLayer2(t *testing.T) {
	lab := speakerlab.New(t, speakerlab.Options{})
	ctx := t.Context()

	t.Run("local service follows its only endpoint, over ARP and NDP, with status and events", func(t *testing.T) {
		a4, a6 := lbAddr(v4, 1), lbAddr(v6, 1)
		lab.AddVIP(a4)
		lab.AddVIP(a6)
		must(t, lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "web", Local: true, Addresses: []netip.Addr{a4, a6}}))
		must(t, lab.SetEndpoints(ctx, "web", v4, speakerlab.EndpointState{Node: "node2"}))
		must(t, lab.SetEndpoints(ctx, "web", v6, speakerlab.EndpointState{Node: "node2"}))
		answeredBy(t, lab, a4, 10*time.Second, "node2")
		answeredBy(t, lab, a6, 10*time.Second, "node2")
		if got, err := lab.ConnectVIP(ctx, a4); err != nil || got != "node2" {
			t.Errorf("TCP to %s reached %q (%v), want node2", a4, got, err)
		}
		if got, err := lab.ConnectVIP(ctx, a6); err != nil || got != "node2" {
			t.Errorf("TCP to %s reached %q (%v), want node2", a6, got, err)
		}
		statusShows(t, lab, a4, "default/web", "node2")
		statusShows(t, lab, a6, "default/web", "node2")

		// Move the only endpoint: the announcement moves with it.
		must(t, lab.SetEndpoints(ctx, "web", v4, speakerlab.EndpointState{Node: "node3"}))
		answeredBy(t, lab, a4, 5*time.Second, "node3")
		answeredBy(t, lab, a6, time.Second, "node2")
		statusShows(t, lab, a4, "default/web", "node3")
		netlab.Eventually(t, 10*time.Second, func(ctx context.Context) error {
			events, err := lab.ServiceEvents(ctx, "web")
			if err != nil {
				return err
			}
			want := "Announcing: Node node3 announces " + a4.String() + " over ARP on eth0, taking over from node node2."
			if !slices.Contains(events, want) {
				return fmt.Errorf("events %q lack %q", events, want)
			}
			return nil
		})

		// No endpoint left: nobody answers.
		must(t, lab.SetEndpoints(ctx, "web", v4))
		must(t, lab.SetEndpoints(ctx, "web", v6))
		answeredBy(t, lab, a4, 5*time.Second)
		answeredBy(t, lab, a6, 5*time.Second)
		statusShows(t, lab, a4, "default/web")
		must(t, lab.DeleteService(ctx, "web"))
	})

	t.Run("excluded and network-unavailable nodes do not announce", func(t *testing.T) {
		addr := lbAddr(v4, 2)
		must(t, lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "cluster", Addresses: []netip.Addr{addr}}))
		must(t, lab.SetEndpoints(ctx, "cluster", v4, speakerlab.EndpointState{Node: "node1"}))
		ranking := speaker.Ranking(addr, lab.NodeNames())
		answeredBy(t, lab, addr, 10*time.Second, ranking[0])

		excluded := ""
		must(t, lab.SetNodeLabel(ctx, ranking[0], "node.kubernetes.io/exclude-from-external-load-balancers", &excluded))
		answeredBy(t, lab, addr, 5*time.Second, ranking[1])
		must(t, lab.SetNetworkUnavailable(ctx, ranking[1], true))
		answeredBy(t, lab, addr, 5*time.Second, ranking[2])
		statusShows(t, lab, addr, "default/cluster", ranking[2])

		must(t, lab.SetNetworkUnavailable(ctx, ranking[1], false))
		must(t, lab.SetNodeLabel(ctx, ranking[0], "node.kubernetes.io/exclude-from-external-load-balancers", nil))
		answeredBy(t, lab, addr, 5*time.Second, ranking[0])
		must(t, lab.DeleteService(ctx, "cluster"))
	})

	t.Run("the claim decides: its pool after a pool edit, its holder's UID", func(t *testing.T) {
		addr := lbAddr(v4, 4)
		must(t, lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "claimed", Addresses: []netip.Addr{addr}}))
		must(t, lab.SetEndpoints(ctx, "claimed", v4, speakerlab.EndpointState{Node: "node1"}))
		owner := speaker.Ranking(addr, lab.NodeNames())[0]
		answeredBy(t, lab, addr, 10*time.Second, owner)

		// The pool no longer covers the address: its claim still names the
		// pool, whose L2Advertisement still announces it.
		pools := lab.Herald.HeraldV1alpha1().IPPools()
		setPoolAddresses := func(addrs ...string) {
			t.Helper()
			pool, err := pools.Get(ctx, speakerlab.PoolName, metav1.GetOptions{})
			must(t, err)
			pool.Spec.Addresses = addrs
			_, err = pools.Update(ctx, pool, metav1.UpdateOptions{})
			must(t, err)
		}
		setPoolAddresses(netlab.L2PoolV6.String())
		time.Sleep(2 * time.Second) // the speakers see the edit within milliseconds
		answeredBy(t, lab, addr, time.Second, owner)
		setPoolAddresses(netlab.L2PoolV4.String(), netlab.L2PoolV6.String())

		// Without its claim the address is not announced, nor with a claim
		// of a former Service of the same name (another UID).
		svc, err := lab.Kube.CoreV1().Services(speakerlab.Namespace).Get(ctx, "claimed", metav1.GetOptions{})
		must(t, err)
		must(t, netlab.ReleaseClaim(ctx, lab.Herald, addr, speakerlab.Namespace, "claimed", ""))
		answeredBy(t, lab, addr, 5*time.Second)
		former := svc.DeepCopy()
		former.UID = "00000000-0000-0000-0000-00000000f0f0"
		must(t, netlab.WriteClaim(ctx, lab.Herald, addr, speakerlab.PoolName, former, v1alpha1.HolderLoadBalancer))
		time.Sleep(2 * time.Second)
		answeredBy(t, lab, addr, time.Second)
		must(t, netlab.WriteClaim(ctx, lab.Herald, addr, speakerlab.PoolName, svc, v1alpha1.HolderLoadBalancer))
		answeredBy(t, lab, addr, 5*time.Second, owner)
		must(t, lab.DeleteService(ctx, "claimed"))
		answeredBy(t, lab, addr, 5*time.Second)
		if _, err := lab.Herald.HeraldV1alpha1().AddressClaims().Get(ctx, config.ClaimName(addr), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("after DeleteService, the claim of %s: %v, want it deleted", addr, err)
		}
	})

	t.Run("the API going away does not stop announcements", func(t *testing.T) {
		addr := lbAddr(v4, 3)
		must(t, lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "steady", Local: true, Addresses: []netip.Addr{addr}}))
		must(t, lab.SetEndpoints(ctx, "steady", v4, speakerlab.EndpointState{Node: "node1"}))
		answeredBy(t, lab, addr, 10*time.Second, "node1")
		must(t, lab.APIDown(true))
		time.Sleep(3 * time.Second) // long enough for watches to break and relist to fail
		answeredBy(t, lab, addr, time.Second, "node1")
		must(t, lab.APIDown(false))
		must(t, lab.DeleteService(ctx, "steady"))
		answeredBy(t, lab, addr, 15*time.Second)
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
