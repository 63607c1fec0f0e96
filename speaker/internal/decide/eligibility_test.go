package decide

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func alive(names ...string) []NodeState {
	out := make([]NodeState, 0, len(names))
	for _, n := range names {
		out = append(out, NodeState{Name: n, SpeakerAlive: true})
	}
	return out
}

var (
	ready       = func(node string) Endpoint { return Endpoint{NodeName: node, Ready: true, Serving: true} }
	terminating = func(node string) Endpoint {
		return Endpoint{NodeName: node, Serving: true, Terminating: true}
	}
	// gone is a terminating endpoint that has stopped serving.
	gone = func(node string) Endpoint { return Endpoint{NodeName: node, Terminating: true} }
	// starting is an endpoint whose pod is not ready yet.
	starting = func(node string) Endpoint { return Endpoint{NodeName: node} }
	// settling is a ready endpoint on a node whose first ready endpoint is
	// younger than the takeover delay.
	settling = func(node string) Endpoint {
		return Endpoint{NodeName: node, Ready: true, Serving: true, Settling: true}
	}
)

func TestEligibleNodes(t *testing.T) {
	tests := []struct {
		name  string
		svc   ServiceState
		nodes []NodeState
		want  Eligibility
	}{
		{
			name:  "cluster without endpoints",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyCluster},
			nodes: alive("a", "b"),
			want: Eligibility{Ineligible: []NodeVerdict{
				{"a", ReasonNoServingEndpoint}, {"b", ReasonNoServingEndpoint},
			}},
		},
		{
			name:  "cluster with one ready endpoint makes every live node eligible",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyCluster, Endpoints: []Endpoint{ready("a")}},
			nodes: alive("c", "a", "b"),
			want:  Eligibility{Nodes: []string{"a", "b", "c"}},
		},
		{
			name:  "empty policy means cluster",
			svc:   ServiceState{Endpoints: []Endpoint{ready("a")}},
			nodes: alive("a", "b"),
			want:  Eligibility{Nodes: []string{"a", "b"}},
		},
		{
			name:  "cluster counts an endpoint without a node name",
			svc:   ServiceState{Endpoints: []Endpoint{{Ready: true, Serving: true}}},
			nodes: alive("a"),
			want:  Eligibility{Nodes: []string{"a"}},
		},
		{
			name:  "cluster falls back to serving-terminating endpoints",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyCluster, Endpoints: []Endpoint{terminating("a"), gone("b")}},
			nodes: alive("a", "b"),
			want:  Eligibility{Nodes: []string{"a", "b"}, ServingTerminating: true},
		},
		{
			name:  "cluster with ready and terminating is not a fallback",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyCluster, Endpoints: []Endpoint{terminating("a"), ready("b")}},
			nodes: alive("a", "b"),
			want:  Eligibility{Nodes: []string{"a", "b"}},
		},
		{
			name:  "cluster with only non-serving endpoints",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyCluster, Endpoints: []Endpoint{gone("a"), starting("b")}},
			nodes: alive("a", "b"),
			want: Eligibility{Ineligible: []NodeVerdict{
				{"a", ReasonNoServingEndpoint}, {"b", ReasonNoServingEndpoint},
			}},
		},
		{
			name: "cluster leaves out a node without a live speaker",
			svc:  ServiceState{TrafficPolicy: TrafficPolicyCluster, Endpoints: []Endpoint{ready("b")}},
			nodes: []NodeState{
				{Name: "a", SpeakerAlive: true},
				{Name: "b", SpeakerAlive: false},
			},
			want: Eligibility{Nodes: []string{"a"}, Ineligible: []NodeVerdict{{"b", ReasonSpeakerNotAlive}}},
		},
		{
			name:  "local: only nodes with a ready endpoint",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{ready("a"), ready("a"), starting("b")}},
			nodes: alive("a", "b", "c"),
			want: Eligibility{Nodes: []string{"a"}, Ineligible: []NodeVerdict{
				{"b", ReasonNoLocalEndpoint}, {"c", ReasonNoLocalEndpoint},
			}},
		},
		{
			name:  "local: ready wins over serving-terminating elsewhere",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{terminating("a"), ready("b")}},
			nodes: alive("a", "b"),
			want:  Eligibility{Nodes: []string{"b"}, Ineligible: []NodeVerdict{{"a", ReasonNoLocalEndpoint}}},
		},
		{
			name:  "local: ready wins on the same node too",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{terminating("a"), ready("a"), terminating("b")}},
			nodes: alive("a", "b"),
			want:  Eligibility{Nodes: []string{"a"}, Ineligible: []NodeVerdict{{"b", ReasonNoLocalEndpoint}}},
		},
		{
			name: "local: no ready endpoint anywhere, serving-terminating nodes drain",
			svc: ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{
				terminating("c"), gone("a"), terminating("b"), starting("a"),
			}},
			nodes: alive("a", "b", "c"),
			want: Eligibility{
				Nodes: []string{"b", "c"}, ServingTerminating: true,
				Ineligible: []NodeVerdict{{"a", ReasonNoLocalEndpoint}},
			},
		},
		{
			name:  "local: terminating endpoints that stopped serving are not used",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{gone("a")}},
			nodes: alive("a"),
			want:  Eligibility{Ineligible: []NodeVerdict{{"a", ReasonNoLocalEndpoint}}},
		},
		{
			name:  "local without endpoints",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal},
			nodes: alive("a"),
			want:  Eligibility{Ineligible: []NodeVerdict{{"a", ReasonNoLocalEndpoint}}},
		},
		{
			name: "local: a ready endpoint on an excluded node does not block the fallback",
			svc:  ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{ready("a"), terminating("b")}},
			nodes: []NodeState{
				{Name: "a", SpeakerAlive: true, ExcludedFromLoadBalancers: true},
				{Name: "b", SpeakerAlive: true},
			},
			want: Eligibility{
				Nodes: []string{"b"}, ServingTerminating: true,
				Ineligible: []NodeVerdict{{"a", ReasonExcludedFromLoadBalancers}},
			},
		},
		{
			name: "local: a ready endpoint on a node without speaker does not block the fallback",
			svc:  ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{ready("a"), terminating("b")}},
			nodes: []NodeState{
				{Name: "a"},
				{Name: "b", SpeakerAlive: true},
			},
			want: Eligibility{
				Nodes: []string{"b"}, ServingTerminating: true,
				Ineligible: []NodeVerdict{{"a", ReasonSpeakerNotAlive}},
			},
		},
		{
			name:  "local: endpoints on unknown nodes or without a node are ignored",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{ready("x"), ready("")}},
			nodes: alive("a"),
			want:  Eligibility{Ineligible: []NodeVerdict{{"a", ReasonNoLocalEndpoint}}},
		},
		{
			name: "never eligible: exclusions, first reason wins",
			svc: ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{
				ready("a"), ready("b"), ready("c"), ready("d"), ready("e"), ready("f"), ready("g"),
			}},
			nodes: []NodeState{
				{Name: "g", SpeakerAlive: true},
				{Name: "a", SpeakerAlive: true, ExcludedFromLoadBalancers: true},
				{Name: "b", SpeakerAlive: true, NetworkUnavailable: true},
				{Name: "c", SpeakerAlive: true, ToBeDeletedByClusterAutoscaler: true},
				{Name: "d", SpeakerAlive: true, Deleting: true},
				{Name: "e", SpeakerAlive: false},
				{Name: "f", SpeakerAlive: true, Deleting: true, ExcludedFromLoadBalancers: true, NetworkUnavailable: true},
			},
			want: Eligibility{Nodes: []string{"g"}, Ineligible: []NodeVerdict{
				{"a", ReasonExcludedFromLoadBalancers},
				{"b", ReasonNetworkUnavailable},
				{"c", ReasonToBeDeletedByClusterAutoscaler},
				{"d", ReasonNodeDeleting},
				{"e", ReasonSpeakerNotAlive},
				{"f", ReasonNodeDeleting},
			}},
		},
		{
			name:  "local: a settling node waits while a settled node serves",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{ready("a"), settling("b")}},
			nodes: alive("a", "b", "c"),
			want: Eligibility{Nodes: []string{"a"}, Ineligible: []NodeVerdict{
				{"b", ReasonEndpointSettling}, {"c", ReasonNoLocalEndpoint},
			}},
		},
		{
			name:  "local: a node with a settled and a settling endpoint is settled",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{settling("a"), ready("a"), settling("b")}},
			nodes: alive("a", "b"),
			want:  Eligibility{Nodes: []string{"a"}, Ineligible: []NodeVerdict{{"b", ReasonEndpointSettling}}},
		},
		{
			name:  "local: settling nodes are eligible at once when no other node serves (a first endpoint)",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{settling("b"), settling("a"), starting("c")}},
			nodes: alive("a", "b", "c"),
			want:  Eligibility{Nodes: []string{"a", "b"}, Ineligible: []NodeVerdict{{"c", ReasonNoLocalEndpoint}}},
		},
		{
			name:  "local: a draining node keeps forwarding while the new node settles",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{terminating("a"), settling("b")}},
			nodes: alive("a", "b"),
			want: Eligibility{
				Nodes: []string{"a"}, ServingTerminating: true,
				Ineligible: []NodeVerdict{{"b", ReasonEndpointSettling}},
			},
		},
		{
			name:  "local: a settling node that also drains on itself forwards to its terminating endpoint",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{terminating("a"), settling("a"), settling("b")}},
			nodes: alive("a", "b"),
			want: Eligibility{
				Nodes: []string{"a"}, ServingTerminating: true,
				Ineligible: []NodeVerdict{{"b", ReasonEndpointSettling}},
			},
		},
		{
			name:  "local: settling nodes are used when the draining endpoints stopped serving",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{gone("a"), settling("b")}},
			nodes: alive("a", "b"),
			want:  Eligibility{Nodes: []string{"b"}, Ineligible: []NodeVerdict{{"a", ReasonNoLocalEndpoint}}},
		},
		{
			name: "local: a settled node that is not usable does not hold a settling one back",
			svc:  ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{ready("a"), settling("b")}},
			nodes: []NodeState{
				{Name: "a", SpeakerAlive: false},
				{Name: "b", SpeakerAlive: true},
			},
			want: Eligibility{Nodes: []string{"b"}, Ineligible: []NodeVerdict{{"a", ReasonSpeakerNotAlive}}},
		},
		{
			name:  "local: settled ready nodes win over draining and settling ones",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyLocal, Endpoints: []Endpoint{terminating("a"), settling("b"), ready("c")}},
			nodes: alive("a", "b", "c"),
			want: Eligibility{Nodes: []string{"c"}, Ineligible: []NodeVerdict{
				{"a", ReasonNoLocalEndpoint}, {"b", ReasonEndpointSettling},
			}},
		},
		{
			name:  "cluster: settling does not matter",
			svc:   ServiceState{TrafficPolicy: TrafficPolicyCluster, Endpoints: []Endpoint{settling("a")}},
			nodes: alive("a", "b"),
			want:  Eligibility{Nodes: []string{"a", "b"}},
		},
		{
			name:  "duplicate node names count once",
			svc:   ServiceState{Endpoints: []Endpoint{ready("a")}},
			nodes: alive("a", "a", "b"),
			want:  Eligibility{Nodes: []string{"a", "b"}},
		},
		{
			name: "no nodes",
			svc:  ServiceState{Endpoints: []Endpoint{ready("a")}},
			want: Eligibility{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EligibleNodes(tt.svc, tt.nodes)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("EligibleNodes() mismatch (-want +got):\n%s", diff)
			}
			// The answer must not depend on the order informers delivered things in.
			rev := ServiceState{TrafficPolicy: tt.svc.TrafficPolicy, Endpoints: slices.Clone(tt.svc.Endpoints)}
			slices.Reverse(rev.Endpoints)
			nodes := slices.Clone(tt.nodes)
			slices.Reverse(nodes)
			if diff := cmp.Diff(tt.want, EligibleNodes(rev, nodes)); diff != "" {
				t.Errorf("EligibleNodes() on reversed input mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
