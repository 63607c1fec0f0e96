package kubeinput

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// SecretCache caches the Secrets of one namespace that this node's speaker needs (the
// password Secrets of the BGPPeers selecting the node), and no other: one informer
// per name, which lists and watches with the field selector metadata.name=<name>, so
// the apiserver sends nothing else, and an operator may restrict the speaker's Role
// to those names (RBAC's resourceNames authorize a list or watch that selects one
// name). Want sets the names; informers start and stop as they change. It serves as
// the speaker's Secret lister.
type SecretCache struct {
	listWatch func(name string) cache.ListerWatcher
	namespace string
	transform cache.TransformFunc

	mu       sync.Mutex
	ctx      context.Context // set by Start; nil before
	handlers []cache.ResourceEventHandler
	want     []string
	watches  map[string]*secretWatch
}

// secretWatch is the informer of one Secret name.
type secretWatch struct {
	informer cache.SharedIndexInformer
	stop     context.CancelFunc
}

// NewSecretCache returns a cache of the Secrets of namespace, each read by the
// list-watch listWatch returns for its name (which selects that name only), with
// transform applied to each object. It watches nothing until Start and Want.
func NewSecretCache(listWatch func(name string) cache.ListerWatcher, namespace string, transform cache.TransformFunc) *SecretCache {
	return &SecretCache{listWatch: listWatch, namespace: namespace, transform: transform, watches: map[string]*secretWatch{}}
}

// AddEventHandler adds h to every name's informer, present and future. When a name
// is no longer wanted, h sees its cached Secret deleted.
func (c *SecretCache) AddEventHandler(h cache.ResourceEventHandler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handlers = append(c.handlers, h)
	for _, w := range c.watches {
		_, _ = w.informer.AddEventHandler(h)
	}
}

// Start starts the informers of the wanted names, and of those wanted later, until
// ctx is done.
func (c *SecretCache) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ctx = ctx
	c.apply()
}

// Want makes the cache hold exactly the Secrets named names: it starts an informer
// for each new name and stops those of the names left out, dropping their Secrets.
func (c *SecretCache) Want(names []string) {
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want = names
	c.apply()
}

// Watched returns the names whose informers run, sorted.
func (c *SecretCache) Watched() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.watches))
}

// apply starts and stops informers so that they match c.want. Called with c.mu held.
func (c *SecretCache) apply() {
	if c.ctx == nil {
		return
	}
	for name, w := range c.watches {
		if _, ok := slices.BinarySearch(c.want, name); ok {
			continue
		}
		w.stop()
		delete(c.watches, name)
		for _, obj := range w.informer.GetStore().List() {
			for _, h := range c.handlers {
				h.OnDelete(obj)
			}
		}
	}
	for _, name := range c.want {
		if _, ok := c.watches[name]; ok {
			continue
		}
		inf := cache.NewSharedIndexInformer(c.listWatch(name), &corev1.Secret{}, 0, cache.Indexers{})
		if c.transform != nil {
			_ = inf.SetTransform(c.transform)
		}
		for _, h := range c.handlers {
			_, _ = inf.AddEventHandler(h)
		}
		ctx, stop := context.WithCancel(c.ctx)
		c.watches[name] = &secretWatch{informer: inf, stop: stop}
		go inf.Run(ctx.Done())
	}
}

// List returns the cached Secrets that match selector, sorted by name.
func (c *SecretCache) List(selector labels.Selector) ([]*corev1.Secret, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*corev1.Secret
	for name, w := range c.watches {
		obj, ok, _ := w.informer.GetStore().GetByKey(c.namespace + "/" + name)
		if !ok {
			continue
		}
		if s, isSecret := obj.(*corev1.Secret); isSecret && selector.Matches(labels.Set(s.Labels)) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Secret) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Secrets returns a lister of the cached Secrets of namespace (none but the cache's
// own namespace).
func (c *SecretCache) Secrets(namespace string) corelisters.SecretNamespaceLister {
	return secretNamespaceLister{c: c, namespace: namespace}
}

var _ corelisters.SecretLister = (*SecretCache)(nil)

// secretNamespaceLister lists a SecretCache's Secrets of one namespace.
type secretNamespaceLister struct {
	c         *SecretCache
	namespace string
}

func (l secretNamespaceLister) List(selector labels.Selector) ([]*corev1.Secret, error) {
	if l.namespace != l.c.namespace {
		return nil, nil
	}
	return l.c.List(selector)
}

func (l secretNamespaceLister) Get(name string) (*corev1.Secret, error) {
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
	if l.namespace != l.c.namespace {
		return nil, notFound
	}
	l.c.mu.Lock()
	w, ok := l.c.watches[name]
	l.c.mu.Unlock()
	if !ok {
		return nil, notFound
	}
	obj, ok, _ := w.informer.GetStore().GetByKey(l.namespace + "/" + name)
	if !ok {
		return nil, notFound
	}
	s, isSecret := obj.(*corev1.Secret)
	if !isSecret {
		return nil, notFound
	}
	return s, nil
}
