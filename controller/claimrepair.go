package controller

import (
	"context"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/ipam"
)

// claimRepairPeriod is how often the leader looks for claim holders whose
// Service its informer does not have.
const claimRepairPeriod = 30 * time.Second

// orphans tracks claim holders that no allocator completed: the Service
// lives, but neither this Core holds the address nor does the Service show it
// (status or spec.externalIPs). One seen so in two repair passes in a row is
// due: the Service's next reconcile removes it (Claims.Settle).
type orphans struct {
	mu   sync.Mutex
	seen map[string]bool // Service keys with an orphan holder in the last pass
	due  map[string]bool
}

// takeOrphansDue reports, once, whether the Service key has orphan holders due.
func (c *Controller) takeOrphansDue(key string) bool {
	c.orphans.mu.Lock()
	defer c.orphans.mu.Unlock()
	due := c.orphans.due[key]
	delete(c.orphans.due, key)
	return due
}

// repairClaims queues every Service a claim lists that the Services
// informer does not have (or has under another UID): its reconcile releases
// the holder once a live read confirms the Service is gone (Claims.Release,
// Claims.Settle). It also queues, with their orphans due, the Services with a
// holder no allocator completed in two passes in a row. Cost: O(claims),
// reads only the caches.
func (c *Controller) repairClaims(context.Context) {
	claims, err := c.claims.cfg.Lister.List(labels.Everything())
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, cl := range claims {
		addr, err := config.ParseClaimName(cl.Name)
		if err != nil {
			continue
		}
		for _, h := range cl.Spec.Holders {
			key := h.Namespace + "/" + h.Name
			s, err := c.services.Services(h.Namespace).Get(h.Name)
			if err != nil || string(s.UID) != h.UID {
				c.svcQueue.Add(key)
				continue
			}
			kind, shown := ipam.LoadBalancer, config.LoadBalancerAddresses(s)
			if h.As == v1alpha1.HolderExternalIP {
				kind, shown = ipam.ExternalIP, config.ExternalIPAddresses(s)
			}
			if !c.core.Holds(h.Namespace, h.Name, h.UID, kind, addr) && !slices.Contains(shown, addr) {
				seen[key] = true
			}
		}
	}
	c.orphans.mu.Lock()
	var due []string
	for key := range seen {
		if c.orphans.seen[key] {
			due = append(due, key)
		}
	}
	if c.orphans.due == nil {
		c.orphans.due = map[string]bool{}
	}
	for _, key := range due {
		c.orphans.due[key] = true
	}
	c.orphans.seen = seen
	c.orphans.mu.Unlock()
	for _, key := range due {
		c.svcQueue.Add(key)
	}
}
