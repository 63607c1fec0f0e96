// Package kubeinput turns the Kubernetes objects the speaker watches into
// the inputs of package decide: the informers (NewInformers, on kubeclient.ListWatches),
// their transforms that keep only the fields the speaker reads
// (TransformObject: Services, EndpointSlices and AddressClaims become the
// compact CachedService, CachedSlice and CachedClaim), the Node and
// EndpointSlice summaries (NodeStateFromNode, EndpointsFromSlices), and the
// per-Service summaries rebuilt for the Services that changed (Summaries),
// with the AddressClaims that decide a Service's addresses (BadClaims
// reports the invalid ones).
//
// It only reads caches: it writes nothing to the API, announces nothing and
// reports nothing but the invalid claims' count.
package kubeinput
