package events

import "container/list"

// lru is a map of at most size entries that forgets the least recently
// used one to make room. Get and Put cost O(1). It is not safe for
// concurrent use.
type lru[K comparable, V any] struct {
	size  int
	order *list.List // of *lruEntry, most recently used first
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key   K
	value V
}

func newLRU[K comparable, V any](size int) *lru[K, V] {
	return &lru[K, V]{size: size, order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value of k and marks it used.
func (c *lru[K, V]) Get(k K) (V, bool) {
	el, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruEntry[K, V]).value, true
}

// Put sets the value of k, forgetting the least recently used entry when
// the map is full.
func (c *lru[K, V]) Put(k K, v V) {
	if el, ok := c.items[k]; ok {
		el.Value.(*lruEntry[K, V]).value = v
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, value: v})
	if c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruEntry[K, V]).key)
	}
}

// Len returns how many entries the map holds.
func (c *lru[K, V]) Len() int { return c.order.Len() }
