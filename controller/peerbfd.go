package controller

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// Condition type and reason of a BGPPeer's BFD health, from the speakers'
// records.
const (
	// ConditionBFDUp is present on a BGPPeer, False with reason
	// v1alpha1.SpeakerReasonBFDNotUp, while some node's session with the
	// peer is established with BFD on but BFD has not come up there (the
	// node's SpeakerStatus says so): the router does not answer BFD, and a
	// failure of those nodes is detected by the hold time only.
	ConditionBFDUp = v1alpha1.SpeakerConditionBFDUp
	// maxBFDListedNodes bounds how many nodes the condition's message names.
	maxBFDListedNodes = 3
)

// bfdNotUpNodes returns, sorted, the nodes whose SpeakerStatus has the
// BFDUp condition False and lists peer's session as Established with a BFD
// state other than Up. Pure; O(S x B) for S records of B sessions.
func bfdNotUpNodes(peer string, statuses []*v1alpha1.SpeakerStatus) []string {
	var nodes []string
	for _, st := range statuses {
		if c := meta.FindStatusCondition(st.Status.Conditions, v1alpha1.SpeakerConditionBFDUp); c == nil || c.Status != metav1.ConditionFalse {
			continue
		}
		if slices.ContainsFunc(st.Status.BGPSessions, func(s v1alpha1.BGPSessionStatus) bool {
			return s.Peer == peer && s.State == "Established" && s.BFDState != "" && s.BFDState != "Up"
		}) {
			nodes = append(nodes, st.Name)
		}
	}
	slices.Sort(nodes)
	return nodes
}

// peerBFDCondition returns the BGPPeer's BFDUp condition, False, when some
// node reports BFD not up with it (bfdNotUpNodes), naming up to
// maxBFDListedNodes of them; nil when none does.
func peerBFDCondition(peer string, statuses []*v1alpha1.SpeakerStatus, generation int64) *metav1.Condition {
	nodes := bfdNotUpNodes(peer, statuses)
	if len(nodes) == 0 {
		return nil
	}
	listed := strings.Join(nodes[:min(len(nodes), maxBFDListedNodes)], ", ")
	if len(nodes) > maxBFDListedNodes {
		listed += fmt.Sprintf(" and %d more", len(nodes)-maxBFDListedNodes)
	}
	return &metav1.Condition{
		Type: ConditionBFDUp, Status: metav1.ConditionFalse, Reason: v1alpha1.SpeakerReasonBFDNotUp, ObservedGeneration: generation,
		Message: fmt.Sprintf("BFD is enabled but not up on %s although the session is established: the router does not answer BFD, so a failure of those nodes is detected by the hold time only (see their SpeakerStatus)", listed),
	}
}
