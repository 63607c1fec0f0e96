// Package kubeclient is the speaker's Kubernetes API client: REST clients of
// the three API groups it reads and writes (core/v1: Services, Nodes,
// Secrets, Events; discovery.k8s.io/v1: EndpointSlices; herald.dev/v1alpha1:
// Herald's resources), the list-watches its informers run on
// (ListWatches), the SpeakerStatus client, and the writer of its Events
// (Events, the sink of package events' recorder), with a scheme of those
// groups only (Scheme).
//
// It replaces client-go's generated clientset, its informer factories and
// its scheme, which link every Kubernetes API group (and the discovery and
// OpenAPI clients) into the speaker: about 40 MB more executable, much of it
// touched at start and so resident in every speaker. It also replaces
// Herald's generated typed client (SpeakerStatusClient): that client is
// built on client-go's gentype, which links client-go's fake-client
// tracker, the managed fields and the OpenAPI schemas (with client-go's
// event recorder, which package events replaces, 4.7 MB of executable).
// The speaker's dependency graph is held to this by
// TestSpeakerBinaryLinksNoClientset in package speaker.
//
// It only talks to the API server: it decides, caches and transforms
// nothing (package kubeinput builds the informers on ListWatches).
// Subpackage kubeclienttest makes ListWatches of fake clientsets for tests.
package kubeclient
