package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// claimRepairPeriod is how often the leader looks for claim holders whose
// Service its informer does not have.
const claimRepairPeriod = 30 * time.Second

// repairClaims queues every Service a claim lists that the Services
// informer does not have (or has under another UID). Its reconcile releases
// the holder once a live read confirms the Service is gone (Claims.Release,
// Claims.Settle); a Service that lives and holds the address is left as is.
// Cost: O(claims), reads only the caches.
func (c *Controller) repairClaims(context.Context) {
	claims, err := c.claims.cfg.Lister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, cl := range claims {
		for _, h := range cl.Spec.Holders {
			s, err := c.services.Services(h.Namespace).Get(h.Name)
			if err != nil || string(s.UID) != h.UID {
				c.svcQueue.Add(h.Namespace + "/" + h.Name)
			}
		}
	}
}
