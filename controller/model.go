package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/ipam"
)

// snapshot gathers the configuration model's inputs from the listers.
func (c *Controller) snapshot() config.Snapshot {
	s := config.Snapshot{SecretNamespace: c.cfg.Namespace}
	s.IPPools, _ = c.pools.List(labels.Everything())
	s.L2Advertisements, _ = c.l2s.List(labels.Everything())
	s.BGPPeers, _ = c.peers.List(labels.Everything())
	s.BGPAdvertisements, _ = c.bgpAds.List(labels.Everything())
	s.Namespaces, _ = c.namespaces.List(labels.Everything())
	s.Nodes, _ = c.nodes.List(labels.Everything())
	for _, p := range s.BGPPeers {
		ref := p.Spec.PasswordSecretRef
		if ref == nil {
			continue
		}
		ns := ref.Namespace
		if ns == "" {
			ns = c.cfg.Namespace
		}
		if sec, err := c.secrets.Secrets(ns).Get(ref.Name); err == nil {
			s.Secrets = append(s.Secrets, sec)
		}
	}
	return s
}

// syncModel rebuilds the configuration model from the listers and installs
// it. It reports whether the pools changed (by fingerprint).
func (c *Controller) syncModel() error {
	m := config.Build(c.snapshot())
	err := c.core.SetModel(m)
	c.poolsFingerprint = poolsFingerprint(m.Pools())
	return err
}

// syncModelAndRequeue rebuilds the model, then queues what it may affect:
// every object's status, the Services waiting for capacity and those
// claiming external IPs (a claim is re-checked against the pools), and every
// Service when the pools themselves changed.
func (c *Controller) syncModelAndRequeue() error {
	before := c.poolsFingerprint
	if err := c.syncModel(); err != nil {
		// Pools the IPAM left out are reported on the pools themselves.
		c.log.Warn("configuration problems", "err", err)
	}
	c.enqueueObjectsStatus()
	svcs, _ := c.services.List(labels.Everything())
	poolsChanged := before != c.poolsFingerprint
	for _, s := range svcs {
		if poolsChanged || len(s.Spec.ExternalIPs) > 0 {
			c.enqueueService(s)
		}
	}
	c.kickWaiting("")
	return nil
}

// poolsFingerprint describes the parts of the pools that decide where
// addresses lie and which pool is tried first.
func poolsFingerprint(pools []ipam.PoolSpec) string {
	var b strings.Builder
	for _, p := range pools {
		b.WriteString(p.Name)
		b.WriteString(":")
		for _, r := range p.Ranges {
			b.WriteString(r.String())
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%t,%t,%d;", p.AutoAssign, p.AvoidBuggyIPs, p.Priority)
	}
	return b.String()
}

// importPageSize is how many Services one page of the start-up list holds.
const importPageSize = 500

// importAllocations restores every allocation the AddressClaims record,
// then those that only Services' statuses record (an upgrade), see
// Claims.Import. It lists from the apiserver, not from the cache, so that a
// new leader sees every write of the previous one: an allocation recorded
// after the cache's view would otherwise look free.
func (c *Controller) importAllocations(ctx context.Context) (ImportReport, error) {
	rep, err := c.claims.Import(ctx, c.core)
	if err != nil {
		return ImportReport{}, err
	}
	for _, d := range rep.Displaced {
		c.svcQueue.Add(d.Owner.Namespace + "/" + d.Owner.Name)
	}
	return rep, nil
}

// ListServicesForImport lists every Service from the apiserver in pages, for
// Core.Import. It reads the apiserver rather than a cache, so that a new
// leader sees every write of the previous one: an allocation recorded after
// a cache's view would otherwise look free.
func ListServicesForImport(ctx context.Context, kube kubernetes.Interface) ([]*corev1.Service, error) {
	var svcs []*corev1.Service
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return kube.CoreV1().Services(metav1.NamespaceAll).List(ctx, opts)
	})
	p.PageSize = importPageSize
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		if s, ok := obj.(*corev1.Service); ok {
			// Import never reads managed fields; dropping them at once keeps
			// the peak memory of a start-up with many Services down.
			s.ManagedFields = nil
			svcs = append(svcs, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("controller: list services for import: %w", err)
	}
	return svcs, nil
}
