package controller

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
)

// FieldManager is the field manager of every write the controller makes.
const FieldManager = "herald-controller"

// PoolFinalizer keeps an IPPool that still has allocations from being
// removed; the controller drops it once the pool's last address is released.
const PoolFinalizer = "herald.dev/pool-protection"

// Config configures a Controller.
type Config struct {
	// RESTConfig reaches the apiserver. Required.
	RESTConfig *rest.Config
	// LoadBalancerClass is the spec.loadBalancerClass the controller serves;
	// "" serves only Services without a class (and externalIPs of Services
	// that are not of type LoadBalancer).
	LoadBalancerClass string
	// Namespace is the namespace Herald runs in: where a BGPPeer's
	// passwordSecretRef without a namespace points, and the only namespace
	// whose Secrets the controller reads. Required.
	Namespace string
	// MemberlistSecretName, when set, names the Secret in Namespace that
	// holds the speakers' gossip keys (entry MemberlistSecretKey). The
	// leader creates it with a random key when it is missing and no
	// SpeakerStatus shows that speakers used keys (a first install); else
	// it records a Warning Event (ReasonMemberlistSecretMissing) and sets a
	// metric instead. It never changes an existing one. Empty: the
	// controller leaves the Secret to the user.
	MemberlistSecretName string
	// MemberlistSecretRecreate makes the leader create a missing memberlist
	// Secret even while speakers use keys. The speakers then rotate to its
	// new key (docs/security.md).
	MemberlistSecretRecreate bool
	// Workers is the number of Services reconciled in parallel; default 4.
	Workers int
	// Resync is the informers' resync period, which re-checks every object
	// even without a change; 0 disables it.
	Resync time.Duration
	// LeaderElection, when Enabled, makes the controller act only while it
	// holds a Lease.
	LeaderElection LeaderElection
	// Logger receives the controller's logs; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the controller's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

// LeaderElection configures the Lease that elects the one active replica.
type LeaderElection struct {
	Enabled bool
	// LeaseName and LeaseNamespace name the coordination.k8s.io Lease.
	LeaseName, LeaseNamespace string
	// Identity names this replica in the Lease; default hostname_random.
	Identity string
	// LeaseDuration is how long a Lease not renewed keeps others waiting;
	// RenewDeadline how long the leader keeps trying to renew before it
	// stops; RetryPeriod how often candidates try. With the defaults
	// (DefaultLeaseDuration and friends) a standby takes over at most about
	// LeaseDuration+RetryPeriod after the leader died, and within about
	// RetryPeriod when the leader stepped down on SIGTERM.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Default leader-election timings: a standby replica takes over within
// 12 seconds of the leader dying.
const (
	DefaultLeaseDuration = 10 * time.Second
	DefaultRenewDeadline = 7 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// DefaultWorkers is the default number of Service workers.
const DefaultWorkers = 4

// withDefaults checks cfg and fills in defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.RESTConfig == nil {
		return cfg, errors.New("controller: no REST config")
	}
	if cfg.Namespace == "" {
		return cfg, errors.New("controller: no namespace: name the namespace Herald runs in")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	le := &cfg.LeaderElection
	if le.Enabled {
		if le.LeaseName == "" || le.LeaseNamespace == "" {
			return cfg, errors.New("controller: leader election needs a lease name and namespace")
		}
		if le.LeaseDuration == 0 {
			le.LeaseDuration = DefaultLeaseDuration
		}
		if le.RenewDeadline == 0 {
			le.RenewDeadline = DefaultRenewDeadline
		}
		if le.RetryPeriod == 0 {
			le.RetryPeriod = DefaultRetryPeriod
		}
		if !(le.LeaseDuration > le.RenewDeadline && le.RenewDeadline > le.RetryPeriod && le.RetryPeriod > 0) {
			return cfg, fmt.Errorf("controller: leader election needs lease duration (%s) > renew deadline (%s) > retry period (%s) > 0",
				le.LeaseDuration, le.RenewDeadline, le.RetryPeriod)
		}
		if le.Identity == "" {
			host, err := os.Hostname()
			if err != nil {
				host = "herald-controller"
			}
			le.Identity = host + "_" + randomSuffix()
		}
	}
	return cfg, nil
}
