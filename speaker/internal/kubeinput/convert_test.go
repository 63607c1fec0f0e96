package kubeinput

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/speaker/internal/decide"
)

func ptr[T any](v T) *T { return &v }

func TestNodeStateFromNode(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name  string
		node  *corev1.Node
		alive bool
		want  decide.NodeState
	}{
		{
			name:  "plain node",
			node:  &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}},
			alive: true,
			want:  decide.NodeState{Name: "n1", SpeakerAlive: true},
		},
		{
			name: "exclude label with an empty value still excludes",
			node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{
				corev1.LabelNodeExcludeBalancers: "",
			}}},
			want: decide.NodeState{Name: "n1", ExcludedFromLoadBalancers: true},
		},
		{
			name: "network unavailable only when the condition is True",
			node: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "n1"},
				Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
					{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
					{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue},
				}},
			},
			want: decide.NodeState{Name: "n1", NetworkUnavailable: true},
		},
		{
			name: "network available",
			node: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "n1"},
				Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
					{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse},
				}},
			},
			want: decide.NodeState{Name: "n1"},
		},
		{
			name: "autoscaler taint and deletion",
			node: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "n1", DeletionTimestamp: &now},
				Spec: corev1.NodeSpec{Taints: []corev1.Taint{
					{Key: "other", Effect: corev1.TaintEffectNoSchedule},
					{Key: TaintToBeDeletedByClusterAutoscaler, Value: "1700000000", Effect: corev1.TaintEffectNoSchedule},
				}},
			},
			want: decide.NodeState{Name: "n1", Deleting: true, ToBeDeletedByClusterAutoscaler: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, NodeStateFromNode(tt.node, tt.alive)); diff != "" {
				t.Errorf("NodeStateFromNode() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceStateFromService(t *testing.T) {
	v4 := &discoveryv1.EndpointSlice{
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{NodeName: ptr("a")}, // all conditions nil: ready and serving
			{NodeName: ptr("b"), Conditions: discoveryv1.EndpointConditions{
				Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true),
			}},
			{Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(false)}},
		},
	}
	v6 := &discoveryv1.EndpointSlice{
		AddressType: discoveryv1.AddressTypeIPv6,
		Endpoints:   []discoveryv1.Endpoint{{NodeName: ptr("c"), Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}},
	}
	local := &corev1.Service{Spec: corev1.ServiceSpec{ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal}}
	cluster := &corev1.Service{}

	tests := []struct {
		name   string
		svc    *corev1.Service
		family discoveryv1.AddressType
		want   decide.ServiceState
	}{
		{
			name:   "local, IPv4 slices only",
			svc:    local,
			family: discoveryv1.AddressTypeIPv4,
			want: decide.ServiceState{TrafficPolicy: decide.TrafficPolicyLocal, Endpoints: []decide.Endpoint{
				{NodeName: "a", Ready: true, Serving: true},
				{NodeName: "b", Serving: true, Terminating: true},
				{},
			}},
		},
		{
			name:   "cluster, IPv6 slices only",
			svc:    cluster,
			family: discoveryv1.AddressTypeIPv6,
			want: decide.ServiceState{TrafficPolicy: decide.TrafficPolicyCluster, Endpoints: []decide.Endpoint{
				{NodeName: "c", Ready: true, Serving: true},
			}},
		},
		{
			name: "every family",
			svc:  cluster,
			want: decide.ServiceState{TrafficPolicy: decide.TrafficPolicyCluster, Endpoints: []decide.Endpoint{
				{NodeName: "a", Ready: true, Serving: true},
				{NodeName: "b", Serving: true, Terminating: true},
				{},
				{NodeName: "c", Ready: true, Serving: true},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ServiceStateFromService(tt.svc, []*discoveryv1.EndpointSlice{v4, nil, v6}, tt.family)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ServiceStateFromService() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
