package kubeclient

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"
)

// ListWatches are what the speaker's informers list and watch: one
// list-watch per kind, of every namespace, and for Secrets one per name.
type ListWatches struct {
	Services, EndpointSlices, Nodes cache.ListerWatcher
	AddressClaims, IPPools          cache.ListerWatcher
	L2Advertisements, BGPPeers      cache.ListerWatcher
	BGPAdvertisements               cache.ListerWatcher
	// OwnStatus lists and watches this node's SpeakerStatus only (a field
	// selector on its name): a speaker compares its own record with what it
	// wrote and lists the others' only when it marks gone speakers.
	// Watching every record would send each speaker's every status write to
	// every speaker: events that grow with the square of the node count.
	OwnStatus cache.ListerWatcher
	// Secret returns the list-watch of the Secret name in the speaker's
	// namespace, and of no other (a field selector on its name); nil when
	// the speaker reads no Secrets.
	Secret func(name string) cache.ListerWatcher
}

// ListWatches returns the list-watches of node's speaker, which reads
// Secrets in namespace only (none when empty).
func (c *Client) ListWatches(node, namespace string) ListWatches {
	all := func(rc cache.Getter, resource string) cache.ListerWatcher {
		return cache.NewListWatchFromClient(rc, resource, metav1.NamespaceAll, fields.Everything())
	}
	h := c.herald
	lw := ListWatches{
		Services: all(c.core, "services"), EndpointSlices: all(c.discovery, "endpointslices"), Nodes: all(c.core, "nodes"),
		AddressClaims: all(h, "addressclaims"), IPPools: all(h, "ippools"), L2Advertisements: all(h, "l2advertisements"),
		BGPPeers: all(h, "bgppeers"), BGPAdvertisements: all(h, "bgpadvertisements"),
		OwnStatus: cache.NewFilteredListWatchFromClient(h, "speakerstatuses", metav1.NamespaceAll, NameSelector(node)),
	}
	if namespace != "" {
		lw.Secret = func(name string) cache.ListerWatcher {
			return cache.NewFilteredListWatchFromClient(c.core, "secrets", namespace, NameSelector(name))
		}
	}
	return lw
}

// NameSelector returns a list option modifier that selects the object
// named name only.
func NameSelector(name string) func(*metav1.ListOptions) {
	return func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}
}
