package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// newService returns a LoadBalancer Service, IPv6 single-stack (the
// control plane's IPv6 Service range has room for tens of thousands of
// cluster IPs), without node ports.
func newService(namespace, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: ptr.To(false),
			IPFamilyPolicy:                ptr.To(corev1.IPFamilyPolicySingleStack),
			IPFamilies:                    []corev1.IPFamily{corev1.IPv6Protocol},
			Selector:                      map[string]string{"app": name},
			Ports:                         []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
}

// create creates a Service, retrying while the apiserver pushes back.
func create(ctx context.Context, kube kubernetes.Interface, svc *corev1.Service, retries *atomic.Int64) error {
	for {
		_, err := kube.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{})
		switch {
		case err == nil:
			return nil
		case apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsServiceUnavailable(err):
			retries.Add(1)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		default:
			return fmt.Errorf("create service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
}

// latencyResult is the outcome of the latency phase.
type latencyResult struct {
	Services     int
	Rate         float64 // achieved creates per second
	Latencies    []time.Duration
	CreateErrors int
	// Writes are the apiserver writes per Service during the phase, the
	// Service creates left out (events, pool status and leases included).
	Writes string
}

// latency creates n Services at rate per second, each from its own
// goroutine so a slow create does not delay the next, and measures from
// each create response to the watch event showing its address.
func (l *lab) latency(ctx context.Context, n int, rate float64) (latencyResult, error) {
	interval := time.Duration(float64(time.Second) / rate)
	writesBefore, err := apiserverWrites(ctx, l.kube)
	if err != nil {
		return latencyResult{}, err
	}
	created := make([]time.Time, n)
	var retries atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var errMu sync.Mutex
	start := time.Now()
	next := start
	for i := range n {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		wg.Go(func() {
			err := create(ctx, l.kube, newService(latencyNamespace, fmt.Sprintf("lat-%05d", i)), &retries)
			created[i] = time.Now()
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return latencyResult{}, firstErr
	}
	res := latencyResult{Services: n, Rate: float64(n) / time.Since(start).Seconds()}
	if _, err := l.watch.waitAddressed(ctx, latencyNamespace, n, 2*time.Minute); err != nil {
		return res, err
	}
	for i := range n {
		at, _ := l.watch.addressedAt(fmt.Sprintf("%s/lat-%05d", latencyNamespace, i))
		res.Latencies = append(res.Latencies, at.Sub(created[i]))
	}
	slices.Sort(res.Latencies)
	// Let the pool status refreshes that follow the last allocations land.
	time.Sleep(2 * time.Second)
	writesAfter, err := apiserverWrites(ctx, l.kube)
	if err != nil {
		return res, err
	}
	res.Writes = perService(writesBefore, writesAfter, n)
	return res, nil
}

// creation is the outcome of creating Services in bulk.
type creation struct {
	Services       int
	Start, End     time.Time
	Retries        int64
	ApiserverCPU   time.Duration // kube-apiserver's CPU time while creating
	ControllerCPU  time.Duration // herald-controller's, from the first create until all are addressed
	AllAddressed   time.Duration // from the first create until the last Service has an address
	AfterLastWrite time.Duration // from the last create response until then
}

func (c creation) rate() float64 { return float64(c.Services) / c.End.Sub(c.Start).Seconds() }

// createBulk creates n Services in namespace with clients concurrent
// clients, as fast as the apiserver accepts them.
func createBulk(ctx context.Context, kube kubernetes.Interface, namespace string, n, clients, apiserver int, profile string) (creation, error) {
	before, err := procUsage(apiserver)
	if err != nil {
		return creation{}, err
	}
	var next, done atomic.Int64
	var retries atomic.Int64
	errc := make(chan error, clients)
	var wg sync.WaitGroup
	c := creation{Services: n, Start: time.Now()}
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := create(ctx, kube, newService(namespace, fmt.Sprintf("bulk-%05d", i)), &retries); err != nil {
					errc <- err
					return
				}
				d := done.Add(1)
				if d%2000 == 0 && namespace == bulkNamespace {
					fmt.Printf("  %d created (%v)\n", d, since(c.Start))
				}
				if profile != "" && d == int64(n)*7/10 {
					go func() {
						if err := profileAPIServer(ctx, kube, profile, 20); err != nil {
							fmt.Fprintln(os.Stderr, err)
						} else {
							fmt.Printf("  kube-apiserver CPU profile: %s\n", profile)
						}
					}()
				}
			}
		})
	}
	wg.Wait()
	c.End = time.Now()
	close(errc)
	if err := <-errc; err != nil {
		return c, err
	}
	after, err := procUsage(apiserver)
	if err != nil {
		return c, err
	}
	c.Retries = retries.Load()
	c.ApiserverCPU = after.CPU - before.CPU
	return c, nil
}

// baseline creates the bulk Services on a fresh control plane without the
// controller.
func baseline(ctx context.Context, o options) (creation, error) {
	cp, kube, err := startControlPlane(ctx, o)
	if err != nil {
		return creation{}, err
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop baseline control plane: %v\n", err)
		}
	}()
	pid, err := apiserverPID(cp)
	if err != nil {
		return creation{}, err
	}
	if err := createNamespaces(ctx, kube, latencyNamespace, bulkNamespace); err != nil {
		return creation{}, err
	}
	// The bulk with the controller follows the latency phase's Services, and
	// each create costs the apiserver more the more Services exist: start
	// from as many here, created first and not counted.
	if o.latencyServices > 0 {
		if _, err := createBulk(ctx, kube, latencyNamespace, o.latencyServices, o.clients, pid, ""); err != nil {
			return creation{}, err
		}
	}
	return createBulk(ctx, kube, bulkNamespace, o.bulkServices, o.clients, pid, profilePath(o, "baseline"))
}

// bulk creates the bulk Services with the controller running and waits
// until all have addresses.
func (l *lab) bulk(ctx context.Context, n, clients int) (creation, error) {
	ctrlBefore, err := l.ctrl.usage()
	if err != nil {
		return creation{}, err
	}
	c, err := createBulk(ctx, l.kube, bulkNamespace, n, clients, l.apiserver, profilePath(l.opts, "bulk"))
	if err != nil {
		return c, err
	}
	last, err := l.watch.waitAddressed(ctx, bulkNamespace, n, 5*time.Minute)
	if err != nil {
		return c, err
	}
	ctrlAfter, err := l.ctrl.usage()
	if err != nil {
		return c, err
	}
	c.ControllerCPU = ctrlAfter.CPU - ctrlBefore.CPU
	c.AllAddressed = last.Sub(c.Start)
	c.AfterLastWrite = last.Sub(c.End)
	return c, nil
}

// settle waits until the controller has reconciled at least n Services
// (by its reconcile counter) and the counter has not moved for quiet.
func (l *lab) settle(ctx context.Context, n int, quiet time.Duration) error {
	deadline := time.Now().Add(5 * time.Minute)
	last, lastChange := -1.0, time.Now()
	for time.Now().Before(deadline) {
		v, err := l.ctrl.metric("herald_controller_reconcile_duration_seconds_count", `kind="Service"`)
		if err != nil {
			v = 0
		}
		if v != last {
			last, lastChange = v, time.Now()
		}
		if v >= float64(n) && time.Since(lastChange) >= quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the controller did not settle: %v Services reconciled, want %d", last, n)
}

// memoryResult is the controller's memory once settled.
type memoryResult struct {
	Services int
	Usage    usage
}

// settledMemory waits until the controller is quiet, then reads its memory.
func (l *lab) settledMemory(ctx context.Context) (memoryResult, error) {
	n := l.services()
	if err := l.settle(ctx, 0, 3*time.Second); err != nil {
		return memoryResult{}, err
	}
	u, err := l.ctrl.usage()
	return memoryResult{Services: n, Usage: u}, err
}

// restartResult is the outcome of the restart phase.
type restartResult struct {
	Services        int
	ReadyAfter      time.Duration // process start to /readyz ok
	ImportDuration  time.Duration // herald_controller_import_duration_seconds
	ImportLogged    string        // "took" of the log line
	Imported        int           // herald_controller_imported_allocations
	ChangedAddress  []string
	ChangedVersion  int
	MissingAfter    int
	ReconciledAfter time.Duration // process start until every Service was reconciled and quiet
}

// recorded is what a Service records that a restart must not change.
type recorded struct {
	ingress         string
	resourceVersion string
}

func snapshot(ctx context.Context, kube kubernetes.Interface) (map[string]recorded, error) {
	out := map[string]recorded{}
	opts := metav1.ListOptions{Limit: 1000}
	for {
		list, err := kube.CoreV1().Services(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list services: %w", err)
		}
		for _, s := range list.Items {
			var ips []string
			for _, ing := range s.Status.LoadBalancer.Ingress {
				ips = append(ips, ing.IP)
			}
			out[s.Namespace+"/"+s.Name] = recorded{strings.Join(ips, ","), s.ResourceVersion}
		}
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
}

var tookRE = regexp.MustCompile(`msg="imported existing allocations".* took=(\S+)`)

// restartController stops the controller with SIGTERM, starts a new one,
// measures how soon it is ready, waits until it has reconciled every
// Service, and compares every Service with what it recorded before.
func (l *lab) restartController(ctx context.Context) (restartResult, error) {
	before, err := snapshot(ctx, l.kube)
	if err != nil {
		return restartResult{}, err
	}
	if err := l.ctrl.stop(30 * time.Second); err != nil {
		return restartResult{}, err
	}
	res := restartResult{Services: len(before)}
	if res.ReadyAfter, err = l.startController(ctx); err != nil {
		return res, err
	}
	if v, err := l.ctrl.metric("herald_controller_import_duration_seconds"); err == nil {
		res.ImportDuration = time.Duration(v * float64(time.Second))
	}
	if v, err := l.ctrl.metric("herald_controller_imported_allocations"); err == nil {
		res.Imported = int(v)
	}
	if err := l.settle(ctx, len(before), 3*time.Second); err != nil {
		return res, err
	}
	res.ReconciledAfter = time.Since(l.ctrl.started) - 3*time.Second
	if b, err := os.ReadFile(l.ctrl.logPath); err == nil {
		if m := tookRE.FindSubmatch(b); m != nil {
			res.ImportLogged = string(m[1])
		}
	}
	after, err := snapshot(ctx, l.kube)
	if err != nil {
		return res, err
	}
	for key, was := range before {
		now, ok := after[key]
		switch {
		case !ok:
			res.MissingAfter++
		case now.ingress != was.ingress:
			res.ChangedAddress = append(res.ChangedAddress, fmt.Sprintf("%s: %s -> %s", key, was.ingress, now.ingress))
		case now.resourceVersion != was.resourceVersion:
			res.ChangedVersion++
		}
	}
	return res, nil
}

// profilePath is where a phase's kube-apiserver profile goes, or "".
func profilePath(o options, phase string) string {
	if o.profileDir == "" {
		return ""
	}
	return filepath.Join(o.profileDir, phase+"-apiserver.pprof")
}

// backlogResult is the outcome of the backlog phase.
type backlogResult struct {
	Services      int
	ClearTook     time.Duration // clearing the statuses, by the measurer
	ReadyAfter    time.Duration // controller process start to /readyz
	AllAddressed  time.Duration // controller process start to the last address
	ApiserverCPU  time.Duration // kube-apiserver's CPU from the start to the last address
	ControllerCPU time.Duration // the controller's, over the same time
}

// backlog stops the controller, clears the status of every bulk Service
// (as if they had been created while no controller ran), starts a new
// controller and measures how soon every one has an address again: the
// controller's own allocation throughput, apart from the apiserver's cost
// of creating Services.
func (l *lab) backlog(ctx context.Context, clients int) (backlogResult, error) {
	if err := l.ctrl.stop(30 * time.Second); err != nil {
		return backlogResult{}, err
	}
	start := time.Now()
	n, err := clearStatuses(ctx, l.kube, bulkNamespace, clients)
	if err != nil {
		return backlogResult{}, err
	}
	res := backlogResult{Services: n, ClearTook: time.Since(start)}
	if err := l.watch.forget(ctx, bulkNamespace, 5*time.Minute); err != nil {
		return res, err
	}
	before, err := procUsage(l.apiserver)
	if err != nil {
		return res, err
	}
	if res.ReadyAfter, err = l.startController(ctx); err != nil {
		return res, err
	}
	last, err := l.watch.waitAddressed(ctx, bulkNamespace, n, 5*time.Minute)
	if err != nil {
		return res, err
	}
	res.AllAddressed = last.Sub(l.ctrl.started)
	after, err := procUsage(l.apiserver)
	if err != nil {
		return res, err
	}
	ctrl, err := l.ctrl.usage()
	if err != nil {
		return res, err
	}
	res.ApiserverCPU, res.ControllerCPU = after.CPU-before.CPU, ctrl.CPU
	return res, nil
}

// clearStatuses empties the status (ingress and conditions) of every
// Service in namespace, with clients concurrent clients, and returns how
// many there are.
func clearStatuses(ctx context.Context, kube kubernetes.Interface, namespace string, clients int) (int, error) {
	var svcs []corev1.Service
	opts := metav1.ListOptions{Limit: 1000}
	for {
		list, err := kube.CoreV1().Services(namespace).List(ctx, opts)
		if err != nil {
			return 0, fmt.Errorf("list services: %w", err)
		}
		svcs = append(svcs, list.Items...)
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	var next atomic.Int64
	errc := make(chan error, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(svcs) || ctx.Err() != nil {
					return
				}
				svc := svcs[i].DeepCopy()
				svc.Status = corev1.ServiceStatus{}
				if _, err := kube.CoreV1().Services(namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
					errc <- fmt.Errorf("clear status of %s/%s: %w", namespace, svc.Name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	return len(svcs), nil
}
