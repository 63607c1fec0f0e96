package controller

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// runElected runs the controller's work only while this replica holds the
// Lease. When ctx ends, the work stops first (so no write follows), then the
// Lease is released, so a standby takes over within its retry period rather
// than waiting for the Lease to expire.
func (c *Controller) runElected(ctx context.Context) error {
	le := c.cfg.LeaderElection
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: le.LeaseName, Namespace: le.LeaseNamespace},
		Client:     c.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
	}
	// The elector runs on its own context: cancelling it releases the Lease,
	// which must happen only after the work has stopped.
	electCtx, stopElecting := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElecting()
	workDone := make(chan error, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            le.LeaseName,
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leaseCtx context.Context) {
				c.log.Info("became leader", "identity", le.Identity, "lease", le.LeaseNamespace+"/"+le.LeaseName)
				// Work stops when the Lease is lost or when ctx ends.
				workCtx, stop := context.WithCancel(leaseCtx)
				defer stop()
				unlink := context.AfterFunc(ctx, stop)
				defer unlink()
				workDone <- c.lead(workCtx)
			},
			OnStoppedLeading: func() {
				c.log.Info("stopped leading", "identity", le.Identity)
			},
			OnNewLeader: func(identity string) {
				if identity != le.Identity {
					c.log.Info("another replica leads", "leader", identity)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("controller: leader election: %w", err)
	}
	electorDone := make(chan struct{})
	go func() {
		defer close(electorDone)
		elector.Run(electCtx)
	}()

	select {
	case <-ctx.Done():
		// Stopping: wait for the work (if leading) to stop, then release.
		if elector.IsLeader() || c.leading.Load() {
			<-workDone
		}
		stopElecting()
		<-electorDone
		return nil
	case err := <-workDone:
		// The work stopped while ctx is still alive: the Lease was lost (or
		// the work failed). Either way this replica must not go on.
		stopElecting()
		<-electorDone
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		return ErrLostLeadership
	case <-electorDone:
		if c.leading.Load() {
			<-workDone
		}
		return ErrLostLeadership
	}
}
