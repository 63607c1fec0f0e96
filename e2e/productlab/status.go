package productlab

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/netlab"
)

// What a user reads with kubectl: Service conditions and events, and the status
// of Herald's resources.

// WaitFor calls check every 100 ms until it returns nil, and fails t when timeout
// passes first: netlab.Eventually, kept for its callers.
func WaitFor(t netlab.T, timeout time.Duration, check func(ctx context.Context) error) {
	t.Helper()
	netlab.Eventually(t, timeout, check)
}

// DescribeConditions writes conditions as "Type=Status/Reason: message; ...", for
// failure messages.
func DescribeConditions(conds []metav1.Condition) string {
	if len(conds) == 0 {
		return "no conditions"
	}
	parts := make([]string, len(conds))
	for i, c := range conds {
		parts[i] = fmt.Sprintf("%s=%s/%s: %s", c.Type, c.Status, c.Reason, c.Message)
	}
	return strings.Join(parts, "; ")
}

// WaitServiceCondition waits until the Service namespace/name has the condition
// condType with status and reason, and returns the Service and the condition.
func (l *Lab) WaitServiceCondition(namespace, name, condType string, status metav1.ConditionStatus, reason string, timeout time.Duration) (*corev1.Service, metav1.Condition) {
	l.T.Helper()
	var svc *corev1.Service
	var cond metav1.Condition
	WaitFor(l.T, timeout, func(ctx context.Context) error {
		s, err := l.Kube.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := apimeta.FindStatusCondition(s.Status.Conditions, condType)
		if c == nil || c.Status != status || c.Reason != reason {
			return fmt.Errorf("service %s/%s: want %s=%s/%s; has %s; ingress %v", namespace, name,
				condType, status, reason, DescribeConditions(s.Status.Conditions), IngressAddrs(s))
		}
		svc, cond = s, *c
		return nil
	})
	return svc, cond
}

// EventsAbout lists the events about the object of kind (Service, IPPool, ...)
// named name in namespace.
func (l *Lab) EventsAbout(ctx context.Context, namespace, kind, name string) ([]corev1.Event, error) {
	evs, err := l.Kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name,
	})
	if err != nil {
		return nil, fmt.Errorf("productlab: list events about %s %s/%s: %w", kind, namespace, name, err)
	}
	return evs.Items, nil
}

// DescribeEvents writes events as "Type Reason (source): message; ...", for
// failure messages.
func DescribeEvents(evs []corev1.Event) string {
	if len(evs) == 0 {
		return "no events"
	}
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = fmt.Sprintf("%s %s (%s): %s", e.Type, e.Reason, e.Source.Component, e.Message)
	}
	return strings.Join(parts, "; ")
}

// WaitServiceEvent waits until an event of eventType (Normal, Warning) with reason
// is about the Service namespace/name and its message contains every one of
// contains, and returns it.
func (l *Lab) WaitServiceEvent(namespace, name, eventType, reason string, timeout time.Duration, contains ...string) corev1.Event {
	l.T.Helper()
	var found corev1.Event
	WaitFor(l.T, timeout, func(ctx context.Context) error {
		evs, err := l.EventsAbout(ctx, namespace, "Service", name)
		if err != nil {
			return err
		}
	events:
		for _, e := range evs {
			if e.Type != eventType || e.Reason != reason {
				continue
			}
			for _, s := range contains {
				if !strings.Contains(e.Message, s) {
					continue events
				}
			}
			found = e
			return nil
		}
		return fmt.Errorf("no %s event %s containing %q about service %s/%s; events: %s",
			eventType, reason, contains, namespace, name, DescribeEvents(evs))
	})
	return found
}

// WaitPoolCondition waits until the IPPool name's status describes its current
// generation and has the condition condType with status and reason, and returns
// the pool.
func (l *Lab) WaitPoolCondition(name, condType string, status metav1.ConditionStatus, reason string, timeout time.Duration) *v1alpha1.IPPool {
	l.T.Helper()
	var pool *v1alpha1.IPPool
	WaitFor(l.T, timeout, func(ctx context.Context) error {
		p, err := l.Herald.HeraldV1alpha1().IPPools().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := apimeta.FindStatusCondition(p.Status.Conditions, condType)
		if c == nil || c.Status != status || c.Reason != reason || p.Status.ObservedGeneration != p.Generation {
			return fmt.Errorf("ippool %s (generation %d, observed %d): want %s=%s/%s; has %s", name, p.Generation,
				p.Status.ObservedGeneration, condType, status, reason, DescribeConditions(p.Status.Conditions))
		}
		pool = p
		return nil
	})
	return pool
}

// WaitPoolGone waits until the IPPool name no longer exists.
func (l *Lab) WaitPoolGone(name string, timeout time.Duration) {
	l.T.Helper()
	WaitFor(l.T, timeout, func(ctx context.Context) error {
		p, err := l.Herald.HeraldV1alpha1().IPPools().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("ippool %s still exists: finalizers %v; %s", name, p.Finalizers, DescribeConditions(p.Status.Conditions))
	})
}

// WaitL2AdvertisementReady waits until the L2Advertisement name's status
// describes its current generation with Ready at status and reason, and returns
// the Ready condition.
func (l *Lab) WaitL2AdvertisementReady(name string, status metav1.ConditionStatus, reason string, timeout time.Duration) metav1.Condition {
	l.T.Helper()
	var cond metav1.Condition
	WaitFor(l.T, timeout, func(ctx context.Context) error {
		a, err := l.Herald.HeraldV1alpha1().L2Advertisements().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := apimeta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != status || c.Reason != reason || a.Status.ObservedGeneration != a.Generation {
			return fmt.Errorf("l2advertisement %s (generation %d, observed %d): want Ready=%s/%s; has %s", name,
				a.Generation, a.Status.ObservedGeneration, status, reason, DescribeConditions(a.Status.Conditions))
		}
		cond = *c
		return nil
	})
	return cond
}

// CreateNamespace creates the namespace name with labels, and removes it (see
// RemoveNamespace) in t's cleanup.
func (l *Lab) CreateNamespace(name string, labels map[string]string) {
	l.T.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := l.Kube.CoreV1().Namespaces().Create(l.T.Context(), ns, metav1.CreateOptions{}); err != nil {
		l.T.Fatalf("productlab: create namespace %s: %v", name, err)
	}
	l.T.Cleanup(func() {
		if err := l.RemoveNamespace(name); err != nil {
			l.T.Logf("%v", err)
		}
	})
}

// RemoveNamespace deletes the Services, EndpointSlices and Events in the
// namespace name, then the namespace itself. No namespace controller runs in the
// lab, so it also finalizes the namespace, as that controller would once the
// namespace is empty.
func (l *Lab) RemoveNamespace(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// One request per kind, not kubectl's one per object: a long soak leaves
	// thousands of Events.
	all := metav1.ListOptions{}
	for what, del := range map[string]func() error{
		"services": func() error { // no deletecollection for Services
			list, err := l.Kube.CoreV1().Services(name).List(ctx, all)
			if err != nil {
				return err
			}
			for _, svc := range list.Items {
				if err := l.Kube.CoreV1().Services(name).Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					return err
				}
			}
			return nil
		},
		"endpointslices": func() error {
			return l.Kube.DiscoveryV1().EndpointSlices(name).DeleteCollection(ctx, metav1.DeleteOptions{}, all)
		},
		"events": func() error { return l.Kube.CoreV1().Events(name).DeleteCollection(ctx, metav1.DeleteOptions{}, all) },
	} {
		if err := del(); err != nil && !apierrors.IsNotFound(err) {
			l.T.Logf("productlab: delete the %s of namespace %s: %v", what, name, err)
		}
	}
	// A Service keeps its finalizer until a controller removes it; a test
	// that stopped early may have stopped the controllers. Wait a little,
	// then finalize the namespace in any case.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		list, err := l.Kube.CoreV1().Services(name).List(ctx, all)
		if err != nil || len(list.Items) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	nss := l.Kube.CoreV1().Namespaces()
	if err := nss.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("productlab: delete namespace %s: %w", name, err)
	}
	ns, err := nss.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("productlab: get namespace %s: %w", name, err)
	}
	ns.Spec.Finalizers = nil
	if _, err := nss.Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("productlab: finalize namespace %s: %w", name, err)
	}
	return nil
}
