package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/herald-dev/herald/e2e/productlab"
)

// createServices creates Services one at a time (layer 2, or BGP when bgp)
// and times each from the create call until a client TCP connection to its
// address reaches a pod. The client learns the address the way a user's
// tooling would, from a watch on the Service, and then connects every
// interval. Each Service is deleted before the next.
func (m *measurement) createServices(ctx context.Context, bgp bool) []*result {
	trials := m.cfg.createTrials
	if trials == 0 {
		return nil
	}
	kind, pool := "layer 2", l2Pool
	if bgp {
		kind, pool = "BGP", routedPool
	}
	first := &result{name: "Service creation to the client's first successful connection, " + kind}
	toAddr := &result{name: "Service creation to the address in its status, " + kind, target: "p99 < 100 ms (controller)"}
	fmt.Printf("\nService creation, %s\n", kind)
	l := m.lab
	for i := range trials {
		name := fmt.Sprintf("create-%s-%02d", map[bool]string{true: "bgp", false: "l2"}[bgp], i+1)
		// A new address is new to the client: nothing in its neighbour cache.
		if err := l.Client.FlushNeighbors(ctx); err != nil {
			m.fatalf("%v", err)
		}
		w, err := l.Kube.CoreV1().Services(namespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err != nil {
			m.fatalf("watch Service %s: %v", name, err)
		}
		start := time.Now()
		if _, err := l.Kube.CoreV1().Services(namespace).Create(ctx, newService(serviceSpec{name: name, pool: pool}), metav1.CreateOptions{}); err != nil {
			m.fatalf("create Service %s: %v", name, err)
		}
		m.setEndpoints(ctx, name, readyEndpoints(m.web...)...)
		addr, gotAddr := waitIngress(w, 30*time.Second)
		w.Stop()
		line := fmt.Sprintf("creation, %s, trial %d/%d: ", kind, i+1, trials)
		if !gotAddr {
			first.lost++
			toAddr.lost++
			line += "no address within 30s"
		} else {
			toAddr.add(addr.at.Sub(start))
			conn, ok := m.firstConnection(ctx, addr.addr, 30*time.Second)
			if ok {
				first.add(conn.Sub(start))
				line += fmt.Sprintf("%s in status after %s, first connection after %s", addr.addr, ms(addr.at.Sub(start)), ms(conn.Sub(start)))
			} else {
				first.lost++
				line += fmt.Sprintf("%s in status after %s, no connection within 30s", addr.addr, ms(addr.at.Sub(start)))
			}
		}
		fmt.Println(line)
		m.deleteService(ctx, name)
	}
	return []*result{first, toAddr}
}

// ingress is an address seen in a Service's status and when.
type ingress struct {
	addr netip.Addr
	at   time.Time
}

// waitIngress reads w until the Service has an address in its status.
func waitIngress(w watch.Interface, limit time.Duration) (ingress, bool) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return ingress{}, false
			}
			svc, isSvc := ev.Object.(*corev1.Service)
			if !isSvc {
				continue
			}
			if addrs := productlab.IngressAddrs(svc); len(addrs) > 0 {
				return ingress{addr: addrs[0], at: time.Now()}, true
			}
		case <-timer.C:
			return ingress{}, false
		}
	}
}

// firstConnection opens a connection from the client to addr every interval
// (each with the probe timeout) until one reaches a pod, and returns when the
// first one that did completed.
func (m *measurement) firstConnection(ctx context.Context, addr netip.Addr, limit time.Duration) (time.Time, bool) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	done := make(chan time.Time, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	tick := time.NewTicker(m.cfg.interval)
	defer tick.Stop()
	target := netip.AddrPortFrom(addr, servicePort)
	for {
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx, acancel := context.WithTimeout(ctx, m.cfg.timeout)
			defer acancel()
			if _, err := m.lab.Client.ConnectPod(actx, target); err == nil {
				select {
				case done <- time.Now():
				default:
				}
			}
		}()
		select {
		case at := <-done:
			return at, true
		case <-ctx.Done():
			return time.Time{}, false
		case <-tick.C:
		}
	}
}

// deleteService deletes the Service and its EndpointSlices (no garbage
// collector runs here) and gives the speakers a moment to withdraw it.
func (m *measurement) deleteService(ctx context.Context, name string) {
	l := m.lab
	if err := l.Kube.CoreV1().Services(namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		m.fatalf("delete Service %s: %v", name, err)
	}
	if err := l.Kube.DiscoveryV1().EndpointSlices(namespace).DeleteCollection(ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name}); err != nil {
		m.fatalf("delete the EndpointSlices of %s: %v", name, err)
	}
	time.Sleep(time.Second)
}
