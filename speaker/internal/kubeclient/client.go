package kubeclient

import (
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// Scheme holds the kinds the speaker reads and writes, and no other: those
// of core/v1, discovery.k8s.io/v1 and herald.dev/v1alpha1. The REST
// clients decode the API server's answers with it.
var Scheme = newScheme()

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(corev1.AddToScheme(s))
	utilruntime.Must(discoveryv1.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// codecs are Scheme's serializers.
var codecs = serializer.NewCodecFactory(Scheme)

// Client talks to the API server for the speaker: one HTTP client (one
// connection pool) and a REST client per API group.
type Client struct {
	core, discovery, herald rest.Interface
}

// New returns the Client of cfg.
func New(cfg *rest.Config) (*Client, error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeclient: %w", err)
	}
	// As client-go's clientset does: with a QPS set, Kubernetes' groups
	// share one rate limiter (Herald's group has its own); without,
	// each REST client makes its own default one.
	kubeCfg := rest.CopyConfig(cfg)
	if kubeCfg.RateLimiter == nil && kubeCfg.QPS > 0 {
		if kubeCfg.Burst <= 0 {
			return nil, fmt.Errorf("kubeclient: burst must be positive with a QPS of %v", kubeCfg.QPS)
		}
		kubeCfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(kubeCfg.QPS, kubeCfg.Burst)
	}
	core, err := groupClient(kubeCfg, httpClient, corev1.SchemeGroupVersion, "/api")
	if err != nil {
		return nil, err
	}
	discovery, err := groupClient(kubeCfg, httpClient, discoveryv1.SchemeGroupVersion, "/apis")
	if err != nil {
		return nil, err
	}
	// Herald's group has a rate limiter of its own, as with Herald's
	// generated client.
	herald, err := groupClient(cfg, httpClient, v1alpha1.SchemeGroupVersion, "/apis")
	if err != nil {
		return nil, err
	}
	return &Client{core: core, discovery: discovery, herald: herald}, nil
}

// groupClient returns a REST client of group version gv under apiPath, set
// up as client-go's generated clients set theirs (JSON, Scheme's codecs).
func groupClient(cfg *rest.Config, httpClient *http.Client, gv schema.GroupVersion, apiPath string) (*rest.RESTClient, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &gv
	c.APIPath = apiPath
	c.NegotiatedSerializer = rest.CodecFactoryForGeneratedClient(Scheme, codecs).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientForConfigAndClient(c, httpClient)
	if err != nil {
		return nil, fmt.Errorf("kubeclient: %s: %w", gv, err)
	}
	return rc, nil
}
