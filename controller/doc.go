// Package controller is Herald's single writer of address allocations. It
// watches Services, Namespaces and Herald's resources, drives the ipam
// package, and writes status.loadBalancer.ingress, spec.externalIPs (only
// when a Service asks for an external IP to be allocated), Service
// conditions and Events, the status and finalizer of IPPools, and the status
// of L2Advertisements, BGPPeers and BGPAdvertisements; it also creates the
// speakers' memberlist Secret when it is missing (never changing one that
// exists). It takes a *slog.Logger and a prometheus.Registerer; it must not
// announce addresses (that is the speaker's job) nor import
// cmd/internal/daemon.
//
// # The allocation core
//
// Every allocation decision goes through one code path, so that the
// controller's reconcile loop and an implementation of k8s.io/cloud-provider's
// LoadBalancer decide alike:
//
//   - Desired(svc, subject, class) Intent is the pure translation of what a
//     Service asks for (annotations, spec.loadBalancerIP, ipFamilies and
//     ipFamilyPolicy, spec.externalIPs, sharing key, ports, and for
//     externalTrafficPolicy Local a backend key hashed from the selector)
//     into ipam.Requests, or a Refusal when its own input is invalid.
//     Serves(svc, class) says whether a controller serving class handles svc.
//   - Core holds the ipam.Allocator and the config.Model. NewCore(class);
//     SetModel(config.Build(snapshot)) on every configuration change;
//     Import(services) once before anything else (oldest Service first, so a
//     restart or leader change moves nothing); then for each Service:
//     EnsureLoadBalancer(svc) Decision, EnsureExternalIPs(svc) Decision, or
//     Ensure(svc) for both; ReleaseLoadBalancer / ReleaseExternalIPs(ns,
//     name) when it is gone; Held(ns, name, kind) for what it holds.
//   - A Decision carries the addresses the Service holds afterwards
//     (Ingress() gives status.loadBalancer.ingress, ipMode VIP), the pool,
//     the Service condition to write (Type, Status, Reason, Message; the
//     caller sets ObservedGeneration and LastTransitionTime), Err (a
//     *RefusalError, or the ipam error: errors.Is against ipam.ErrPoolExhausted
//     and friends), Waiting (capacity appearing could help: re-run Ensure when
//     pools change or addresses are released) and Changed (addresses were
//     freed or moved). On failure a Service keeps what it held, except a
//     refused external-IP claim, which is released so that it is never
//     announced.
//
// A cloud-provider LoadBalancer maps onto it directly, as package
// controller/cloudprovider does: EnsureLoadBalancer and
// UpdateLoadBalancer call Core.EnsureLoadBalancer and return
// &LoadBalancerStatus{Ingress: d.Ingress()} when d.Addresses is not empty and
// d.Err otherwise (the upstream controller retries and records the error);
// EnsureLoadBalancerDeleted calls ReleaseLoadBalancer; GetLoadBalancer reads
// Held. The upstream service controller skips Services with a
// loadBalancerClass and never re-syncs on pool changes; the Controller here
// covers both, and Decision.Condition is what it writes where `kubectl
// describe svc` shows it.
//
// # What a Service records, and what speakers read
//
// Every allocated address is recorded in an AddressClaim (herald.dev), one
// object per address named by it (config.ClaimName), with the pool that
// granted it and its holders (Claims, in claims.go): created or extended
// before the Service's status names the address, and the holder removed only
// after it no longer does. Speakers announce from the claims
// (config.ClaimedAddresses), never from condition messages, which are for
// people. The API server's name uniqueness arbitrates between allocators: a
// second controller, a deposed leader or the cloud provider cannot claim an
// address twice. See docs/claims.md.
//
// status.loadBalancer.ingress lists the load-balancer addresses of a Service
// of type LoadBalancer that this controller serves. The condition
// herald.dev/AddressAllocated explains the decision; when True its message
// starts with `Allocated <addresses> from IPPool "<pool>".`, the form the
// previous release's speakers parsed (kept through an upgrade, and read by
// the start-up import of a status that no claim records).
//
// spec.externalIPs is written by users, so nothing in it alone is announced:
// an external IP is claimed only in a pool whose allowExternalIPs admits the
// namespace. A claim is all or nothing: when any external IP of a Service is
// refused (not in such a pool, held by another Service, more than one per
// family), none is claimed, the condition herald.dev/ExternalIPsAccepted is
// False with the reason, and nothing is to be announced.
//
// # Controller
//
// New(Config) then Run(ctx) runs informers, and while this replica holds the
// Lease (or always, without leader election): builds the model, imports
// every allocation the AddressClaims record, then those only statuses record
// (both listed from the apiserver, not the cache, so a new leader sees the
// last writes of the old one), becomes
// Ready, then reconciles with a work queue. On ctx's end the workers stop
// before the Lease is released, so only the leader writes.
package controller
