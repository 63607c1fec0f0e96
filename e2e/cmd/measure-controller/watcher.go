package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// watcher follows every Service with one watch (re-established from the
// last resourceVersion if it breaks) and records, on receipt of each event,
// when a Service was first seen with an address in its status.
type watcher struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	seen      map[string]struct{}
	current   map[string]bool // whether each Service has an address now
	addressed map[string]time.Time
	perNS     map[string]int // addressed Services per namespace
	err       error
}

func startWatcher(ctx context.Context, kube kubernetes.Interface) (*watcher, error) {
	list, err := kube.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return kube.CoreV1().Services(metav1.NamespaceAll).Watch(ctx, opts)
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch services: %w", err)
	}
	w := &watcher{cancel: cancel, done: make(chan struct{}), seen: map[string]struct{}{},
		current: map[string]bool{}, addressed: map[string]time.Time{}, perNS: map[string]int{}}
	for i := range list.Items {
		w.observe(&list.Items[i], time.Now())
	}
	go func() {
		defer close(w.done)
		defer rw.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-rw.ResultChan():
				if !ok {
					return
				}
				now := time.Now()
				switch ev.Type {
				case watch.Added, watch.Modified:
					if svc, ok := ev.Object.(*corev1.Service); ok {
						w.observe(svc, now)
					}
				case watch.Error:
					w.mu.Lock()
					w.err = fmt.Errorf("watch error: %v", ev.Object)
					w.mu.Unlock()
				}
			}
		}
	}()
	return w, nil
}

func (w *watcher) observe(svc *corev1.Service, at time.Time) {
	key := svc.Namespace + "/" + svc.Name
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen[key] = struct{}{}
	w.current[key] = len(svc.Status.LoadBalancer.Ingress) > 0
	if !w.current[key] {
		return
	}
	if _, ok := w.addressed[key]; !ok {
		w.addressed[key] = at
		w.perNS[svc.Namespace]++
	}
}

func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

// count returns how many Services the watch has seen.
func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

// addressedAt returns when the Service key was first seen with an address.
func (w *watcher) addressedAt(key string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.addressed[key]
	return t, ok
}

// waitAddressed waits until n Services of namespace have been seen with an
// address, and returns when the last of them was.
func (w *watcher) waitAddressed(ctx context.Context, namespace string, n int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		got, err := w.perNS[namespace], w.err
		var last time.Time
		if got >= n {
			for k, t := range w.addressed {
				if len(k) > len(namespace) && k[:len(namespace)+1] == namespace+"/" && t.After(last) {
					last = t
				}
			}
		}
		w.mu.Unlock()
		switch {
		case got >= n:
			return last, nil
		case err != nil:
			return time.Time{}, err
		case time.Now().After(deadline):
			return time.Time{}, fmt.Errorf("%d of %d Services in %s addressed after %s", got, n, namespace, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// forget waits until the watch shows no Service of namespace with an
// address (their status was cleared), then forgets when they first had
// one, so that waitAddressed measures the next allocation.
func (w *watcher) forget(ctx context.Context, namespace string, timeout time.Duration) error {
	prefix := namespace + "/"
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		left := 0
		for k, has := range w.current {
			if has && strings.HasPrefix(k, prefix) {
				left++
			}
		}
		if left == 0 {
			for k := range w.addressed {
				if strings.HasPrefix(k, prefix) {
					delete(w.addressed, k)
				}
			}
			w.perNS[namespace] = 0
		}
		w.mu.Unlock()
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d Services in %s still have an address after %s", left, namespace, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
