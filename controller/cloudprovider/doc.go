// Package cloudprovider implements k8s.io/cloud-provider's Interface for
// Herald, so that the upstream service controller
// (k8s.io/cloud-provider/controllers/service, as run by a
// cloud-controller-manager) can drive Herald's allocation core. Register adds
// the provider under the name "herald" (ProviderName); New builds one
// directly.
//
// Only LoadBalancer is supported; Instances, InstancesV2, Zones, Clusters
// and Routes report false. Every allocation decision is the controller
// package's: EnsureLoadBalancer and UpdateLoadBalancer call
// controller.Core.EnsureLoadBalancer, EnsureLoadBalancerDeleted calls
// Core.ReleaseLoadBalancer, GetLoadBalancer reads Core.Held. This package
// only feeds the Core and translates its Decisions.
//
// # What feeds the Core
//
// Initialize starts, on its stop channel, informers for IPPools and
// Namespaces (the configuration model's inputs for allocation: pool ranges,
// priorities, and the namespace labels pools select by), builds the model,
// then imports every allocation recorded in the Services, listed from the
// apiserver (controller.ListServicesForImport, as the controller does), so
// that a restart moves nothing. Until that import is done, every
// LoadBalancer method waits (up to ReadyWait) and then asks the caller to
// retry: an Ensure before the import could hand out an address in use.
// After that, each IPPool or Namespace change rebuilds the model.
//
// # What it must not do
//
// It writes nothing to the apiserver: the upstream service controller
// writes status.loadBalancer.ingress and its own Events and finalizer. It
// does not handle spec.externalIPs, Services of a loadBalancerClass (the
// upstream controller never passes them), IPPool finalizers or status, or
// Service conditions; herald-controller does those. It must not run
// alongside a herald-controller that serves the same Services (both would
// allocate from the same pools without seeing each other's decisions):
// see docs/controller.md.
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
