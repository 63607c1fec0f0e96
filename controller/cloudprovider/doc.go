// Package cloudprovider implements k8s.io/cloud-provider's Interface for
// Herald, so that the upstream service controller
// (k8s.io/cloud-provider/controllers/service, as run by a
// cloud-controller-manager) can drive Herald's allocation core. Register adds
// the provider under the name "herald" (ProviderName); New builds one
// directly. cmd/herald-cloud-controller-manager is the upstream
// cloud-controller-manager command with this provider and only the service
// controller; deploy/overlays/cloud-controller-manager installs it.
//
// Only LoadBalancer is supported; Instances, InstancesV2, Zones, Clusters
// and Routes report false. Every allocation decision is the controller
// package's, and every allocation is recorded in an AddressClaim, the
// contract between Herald's allocators and its speakers (docs/claims.md),
// through controller.Claims: EnsureLoadBalancer and UpdateLoadBalancer call
// Claims.EnsureLoadBalancer (Core.EnsureLoadBalancer, then the claim of each
// address created or extended to list the Service before the status is
// returned; an address another allocator claimed first is adopted and the
// Service decided again), EnsureLoadBalancerDeleted calls
// Claims.ReleaseLoadBalancer, GetLoadBalancer reads Core.Held. No address is
// returned without its claim: a failed claim write is an error, which the
// upstream controller retries. The API server's name uniqueness therefore
// keeps this provider from handing out an address that herald-controller,
// another replica, or its own predecessor holds.
//
// # What feeds the Core
//
// Initialize starts, on its stop channel, informers for IPPools and
// Namespaces (the configuration model's inputs: pool ranges, priorities,
// and the namespace labels pools select by) and for AddressClaims, builds
// the model, then imports the allocations the claims record (and, for a
// cluster upgraded from a release without claims, those Services' statuses
// record without a claim) with Claims.Import, listing from the apiserver so
// that a restart or a new leader moves nothing. Until that import is done,
// every LoadBalancer method waits (up to ReadyWait) and then asks the caller
// to retry: an Ensure before the import could hand out an address in use.
// After that, each IPPool or Namespace change rebuilds the model.
//
// # Claim repair
//
// When a claim stops listing a Service (deleted or edited by hand, by
// another allocator, or by the provider itself), the provider reads that
// Service: gone, its holdings are released and its holders removed; one of
// its own (type LoadBalancer, no class, not being deleted), its claims are
// restored at once, with an AddressClaimRestored Event, without waiting for
// the upstream controller, which would not call (nothing changed in the
// Service); another allocator's, the Core forgets its copy. Calls for one
// Service, the upstream controller's and the repair's, are serialised.
//
// # What it must not do
//
// It writes only AddressClaims and Events about them: the upstream service
// controller writes status.loadBalancer.ingress and its own Events and
// finalizer. It does not handle spec.externalIPs, Services of a
// loadBalancerClass (the upstream controller never passes them), IPPool
// finalizers or status, or Service conditions; herald-controller does
// those. It also removes, once the status no longer names it, the holder of
// an address a living Service of this provider stopped asking for: the
// upstream controller tells the provider nothing when the status it wrote
// drops an address, so the provider settles it only at its next call. herald-controller must therefore run beside it serving another
// class (or not at all), never the Services without a class: see
// docs/install.md, "The cloud-controller-manager".
//
// # What the upstream controller does not do
//
// The upstream controller retries a failed Service with exponential backoff
// from 5 s to 5 min and never re-syncs when pools change. EnsureLoadBalancer
// therefore returns a *api.RetryError (retried at the fixed
// Config.WaitingRetry) when the Service waits for capacity, so a new pool or
// a freed address reaches it within that period. A refusal for the
// Service's own bad input is a plain error, retried with backoff, which the
// upstream controller records in a SyncLoadBalancerFailed Event.
package cloudprovider
