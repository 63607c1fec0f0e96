// Package v1alpha1 holds Herald's custom resources, API group herald.dev,
// version v1alpha1: IPPool, L2Advertisement, BGPPeer and BGPAdvertisement,
// which users write, and SpeakerStatus, which the speakers write. All of them
// are cluster-scoped.
//
// Everything a schema can check is declared here as OpenAPI validation and CEL
// rules, so the API server refuses bad objects with its own message. Rules that
// span objects (overlapping pools, a missing Secret) live in package config and
// come back as status conditions. The generated deepcopy functions, CRDs
// (deploy/crds) and typed clients (config/generated) come from `make generate`.
//
// +kubebuilder:object:generate=true
// +groupName=herald.dev
// +groupGoName=Herald
package v1alpha1
