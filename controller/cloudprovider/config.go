package cloudprovider

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// Config configures a Provider. The cloud-config file a cloud-controller-manager
// passes (--cloud-config) is its YAML or JSON form, read by ParseConfig; an
// empty file or none gives the defaults.
//
//	kubeconfig: /etc/herald/kubeconfig   # optional
//	clientName: herald-cloud-provider    # optional
//	waitingRetry: 5s                     # optional
//	readyWait: 10s                       # optional
type Config struct {
	// Kubeconfig is the path of a kubeconfig file for reading IPPools,
	// Namespaces and Services. Empty: the client configuration comes from
	// the ControllerClientBuilder that Initialize receives.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// ClientName is the name asked of the ControllerClientBuilder (it
	// becomes the service account or user agent); default
	// DefaultClientName.
	ClientName string `json:"clientName,omitempty"`
	// WaitingRetry is how soon a Service waiting for capacity (pool
	// exhausted, address in use, no pool admits it yet) is tried again;
	// default DefaultWaitingRetry.
	WaitingRetry metav1.Duration `json:"waitingRetry,omitempty"`
	// ReadyWait bounds how long a call waits for the initial import before
	// it asks the caller to retry; default DefaultReadyWait.
	ReadyWait metav1.Duration `json:"readyWait,omitempty"`

	// RESTConfig, when set, is used instead of Kubeconfig and the client
	// builder. It is for programs that build the provider themselves.
	RESTConfig *rest.Config `json:"-"`
	// Logger receives the provider's few logs (import done, import or model
	// problems); default slog.Default().
	Logger *slog.Logger `json:"-"`
}

// Defaults of Config.
const (
	DefaultClientName   = "herald-cloud-provider"
	DefaultWaitingRetry = 5 * time.Second
	DefaultReadyWait    = 10 * time.Second
)

// ErrInvalidConfig is wrapped by ParseConfig's errors.
var ErrInvalidConfig = errors.New("cloudprovider: invalid cloud config")

// ParseConfig reads a Config from r (YAML or JSON); a nil r or an empty
// document gives the defaults. Unknown fields and negative durations are
// refused.
func ParseConfig(r io.Reader) (Config, error) {
	var cfg Config
	if r != nil {
		data, err := io.ReadAll(r)
		if err != nil {
			return cfg, fmt.Errorf("cloudprovider: read cloud config: %w", err)
		}
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			return cfg, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	return cfg.withDefaults()
}

// withDefaults checks cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.WaitingRetry.Duration < 0 || cfg.ReadyWait.Duration < 0 {
		return cfg, fmt.Errorf("%w: waitingRetry and readyWait must not be negative", ErrInvalidConfig)
	}
	if cfg.ClientName == "" {
		cfg.ClientName = DefaultClientName
	}
	if cfg.WaitingRetry.Duration == 0 {
		cfg.WaitingRetry.Duration = DefaultWaitingRetry
	}
	if cfg.ReadyWait.Duration == 0 {
		cfg.ReadyWait.Duration = DefaultReadyWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}
