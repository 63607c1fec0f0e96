package productlab

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/e2e/netlab"
)

// ControllerLease is the name of the Lease, in Namespace, that the controller
// replicas elect their leader with (herald-controller's default
// --leader-elect-lease-name).
const ControllerLease = "herald-controller"

// ControllerIdentity returns replica i's name in the Lease: the lab gives each
// replica the POD_NAME herald-controller-<i>, which the controller takes as its
// identity.
func ControllerIdentity(i int) string { return fmt.Sprintf("herald-controller-%d", i) }

// LeaseHolder returns the replica the controller Lease names as its holder, -1
// when it names none or a name that is no replica of the lab.
func (l *Lab) LeaseHolder(ctx context.Context) (int, error) {
	lease, err := l.Kube.CoordinationV1().Leases(Namespace).Get(ctx, ControllerLease, metav1.GetOptions{})
	if err != nil {
		return -1, fmt.Errorf("productlab: get lease %s/%s: %w", Namespace, ControllerLease, err)
	}
	if lease.Spec.HolderIdentity == nil {
		return -1, nil
	}
	for i := range l.opts.ControllerReplicas {
		if *lease.Spec.HolderIdentity == ControllerIdentity(i) {
			return i, nil
		}
	}
	return -1, nil
}

// WaitLeader waits until a running replica other than not (-1: any) holds the
// controller Lease, reports herald_controller_leader 1 and answers /readyz (so it
// has imported the allocations and acts), and returns it.
func (l *Lab) WaitLeader(not int, timeout time.Duration) int {
	l.T.Helper()
	leader := -1
	WaitFor(l.T, timeout, func(ctx context.Context) error {
		i, err := l.LeaseHolder(ctx)
		if err != nil {
			return err
		}
		if i < 0 || i == not {
			return fmt.Errorf("the Lease names replica %d, want a replica other than %d", i, not)
		}
		if p := l.Controller(i); p == nil || p.Exited() {
			return fmt.Errorf("the Lease names replica %d, which is not running", i)
		}
		if v, err := l.ControllerMetric(ctx, i, "herald_controller_leader"); err != nil || v != 1 {
			return fmt.Errorf("replica %d holds the Lease but reports herald_controller_leader %v (%v)", i, v, err)
		}
		if err := l.ControllerReadyz(ctx, i); err != nil {
			return err
		}
		leader = i
		return nil
	})
	return leader
}

// ControllerReadyz returns nil when replica i answers /readyz with 200.
func (l *Lab) ControllerReadyz(ctx context.Context, i int) error {
	code, body, err := l.Cluster.ControlPlane.HTTPGet(ctx, "http://"+controllerMetrics(i)+"/readyz")
	if err != nil {
		return fmt.Errorf("productlab: controller %d /readyz: %w", i, err)
	}
	if code != 200 {
		return fmt.Errorf("productlab: controller %d: /readyz answered %d: %s", i, code, body)
	}
	return nil
}

// ControllerMetric scrapes replica i's /metrics and returns the value of the
// series written exactly as the exposition writes it: a name alone
// (herald_controller_leader) or with every label in the exposition's order
// (herald_controller_pool_addresses{family="ipv4",pool="a",state="used"}).
func (l *Lab) ControllerMetric(ctx context.Context, i int, series string) (float64, error) {
	code, body, err := l.Cluster.ControlPlane.HTTPGet(ctx, "http://"+controllerMetrics(i)+"/metrics")
	if err != nil {
		return 0, fmt.Errorf("productlab: controller %d /metrics: %w", i, err)
	}
	if code != 200 {
		return 0, fmt.Errorf("productlab: controller %d: /metrics answered %d", i, code)
	}
	return metricValue(body, series)
}

// metricValue finds series in a Prometheus text exposition.
func metricValue(exposition, series string) (float64, error) {
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), series+" ")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, fmt.Errorf("productlab: metric %s has no value", series)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("productlab: metric %s: %w", series, err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("productlab: no metric %s", series)
}

// RestoreControllers starts every stopped replica and waits until each answers
// /healthz. It uses no test context, so that a cleanup can call it (a test's
// context ends before its cleanups run).
func (l *Lab) RestoreControllers(timeout time.Duration) error {
	for i := range l.opts.ControllerReplicas {
		if p := l.Controller(i); p == nil || p.Exited() {
			l.StopController(i, false)
			l.StartController(i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i := range l.opts.ControllerReplicas {
		err := netlab.Poll(ctx, timeout, 100*time.Millisecond, func(ctx context.Context) error {
			code, body, err := l.Cluster.ControlPlane.HTTPGet(ctx, "http://"+controllerMetrics(i)+"/healthz")
			if err != nil {
				return err
			}
			if code != 200 {
				return fmt.Errorf("/healthz answered %d: %s", code, body)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("productlab: controller %d is not healthy: %w", i, err)
		}
	}
	return nil
}
