// Package kubeclienttest makes the speaker's kubeclient.ListWatches of
// client-go's and Herald's fake clientsets, for unit tests that drive the
// speaker's informers. Only tests import it: it links the full clientsets,
// which the speaker's binary must not (see package kubeclient).
package kubeclienttest

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/kubeclient"
)

// ListWatches returns the list-watches of node's speaker on the clientsets
// kube and herald (fakes, in tests), with Secrets read in namespace only
// (none when empty). The fakes ignore field selectors; the list-watches
// send them as the real ones do, so reactors can apply them.
func ListWatches(kube kubernetes.Interface, herald heraldclient.Interface, node, namespace string) kubeclient.ListWatches {
	core, h := kube.CoreV1(), herald.HeraldV1alpha1()
	lw := kubeclient.ListWatches{
		Services:          of[*corev1.ServiceList](kube, core.Services(""), nil),
		EndpointSlices:    of[*discoveryv1.EndpointSliceList](kube, kube.DiscoveryV1().EndpointSlices(""), nil),
		Nodes:             of[*corev1.NodeList](kube, core.Nodes(), nil),
		AddressClaims:     of[*v1alpha1.AddressClaimList](herald, h.AddressClaims(), nil),
		IPPools:           of[*v1alpha1.IPPoolList](herald, h.IPPools(), nil),
		L2Advertisements:  of[*v1alpha1.L2AdvertisementList](herald, h.L2Advertisements(), nil),
		BGPPeers:          of[*v1alpha1.BGPPeerList](herald, h.BGPPeers(), nil),
		BGPAdvertisements: of[*v1alpha1.BGPAdvertisementList](herald, h.BGPAdvertisements(), nil),
		OwnStatus:         of[*v1alpha1.SpeakerStatusList](herald, h.SpeakerStatuses(), kubeclient.NameSelector(node)),
	}
	if namespace != "" {
		lw.Secret = func(name string) cache.ListerWatcher {
			return of[*corev1.SecretList](kube, core.Secrets(namespace), kubeclient.NameSelector(name))
		}
	}
	return lw
}

// listWatcher is what a typed client of one kind offers to an informer.
type listWatcher[L runtime.Object] interface {
	List(ctx context.Context, o metav1.ListOptions) (L, error)
	Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)
}

// of returns the list-watch of c, a typed client of clientset client, with
// tweak (if not nil) applied to the options. It tells the reflector whether
// client serves watch-list streams (the fakes do not), as client-go's
// generated informers do.
func of[L runtime.Object](client any, c listWatcher[L], tweak func(*metav1.ListOptions)) cache.ListerWatcher {
	if tweak == nil {
		tweak = func(*metav1.ListOptions) {}
	}
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return c.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return c.Watch(ctx, o)
		},
	}, client)
}
