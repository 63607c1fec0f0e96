package config

import (
	"cmp"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// Kinds of Herald's resources, as ObjectRef.Kind.
const (
	KindIPPool           = "IPPool"
	KindL2Advertisement  = "L2Advertisement"
	KindBGPPeer          = "BGPPeer"
	KindBGPAdvertisement = "BGPAdvertisement"
)

// ObjectRef names one of Herald's cluster-scoped objects.
type ObjectRef struct {
	Kind string
	Name string
}

// Problem is one thing wrong with an object, ready to become a status
// condition: the condition Type (v1alpha1.ConditionReady or
// v1alpha1.ConditionOverlapping), the Status it gives that condition, a stable
// CamelCase Reason, and a Message that says what to change.
type Problem struct {
	Type    string
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

// ObjectProblems are the problems of one object, in a stable order.
type ObjectProblems struct {
	Object   ObjectRef
	Problems []Problem
}

// notReady is a Problem that makes an object's Ready condition False.
func notReady(reason, message string) Problem {
	return Problem{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: message}
}

// overlapping is a Problem that makes an IPPool's Overlapping condition True.
func overlapping(message string) Problem {
	return Problem{Type: v1alpha1.ConditionOverlapping, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonOverlapsOtherPool, Message: message}
}

// problemSet collects problems while a Model is built.
type problemSet map[ObjectRef][]Problem

func (s problemSet) add(ref ObjectRef, p Problem) { s[ref] = append(s[ref], p) }

// has reports whether ref has a problem of the given condition type.
func (s problemSet) has(ref ObjectRef, condType string) bool {
	for _, p := range s[ref] {
		if p.Type == condType {
			return true
		}
	}
	return false
}

// sorted returns the problems ordered by object (kind, name); each object's
// problems keep the order in which Build found them, which is deterministic.
func (s problemSet) sorted() []ObjectProblems {
	out := make([]ObjectProblems, 0, len(s))
	for ref, ps := range s {
		out = append(out, ObjectProblems{Object: ref, Problems: slices.Clone(ps)})
	}
	slices.SortFunc(out, func(a, b ObjectProblems) int { return compareRefs(a.Object, b.Object) })
	return out
}

func compareRefs(a, b ObjectRef) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
}

// conditionTypes lists, per kind, the condition types the model decides, and
// the status each has when no problem says otherwise.
var conditionTypes = map[string][]struct {
	condType string
	healthy  metav1.ConditionStatus
	reason   string
	message  string
}{
	KindIPPool: {
		{v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonValid, "The pool is valid and serves its addresses."},
		{v1alpha1.ConditionOverlapping, metav1.ConditionFalse, v1alpha1.ReasonNoOverlap, "No other pool shares an address with this pool."},
	},
	KindL2Advertisement:  {{v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonValid, "Every pool this advertisement names exists."}},
	KindBGPPeer:          {{v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonValid, "The peer's configuration is complete; session state is reported per node."}},
	KindBGPAdvertisement: {{v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonValid, "Every pool and peer this advertisement names exists."}},
}

// conditionsFrom turns an object's problems into the conditions the model
// decides for it. Several problems of one type become one condition: the
// first problem's reason, and every message joined with "; ".
func conditionsFrom(kind string, problems []Problem, generation int64) []metav1.Condition {
	types := conditionTypes[kind]
	out := make([]metav1.Condition, 0, len(types))
	for _, t := range types {
		c := metav1.Condition{Type: t.condType, Status: t.healthy, Reason: t.reason, Message: t.message, ObservedGeneration: generation}
		var msgs []string
		for _, p := range problems {
			if p.Type != t.condType {
				continue
			}
			if len(msgs) == 0 {
				c.Status, c.Reason = p.Status, p.Reason
			}
			msgs = append(msgs, p.Message)
		}
		if len(msgs) > 0 {
			c.Message = truncateMessage(strings.Join(msgs, "; "))
		}
		out = append(out, c)
	}
	return out
}

// maxConditionMessage is metav1.Condition's limit on Message.
const maxConditionMessage = 32768

func truncateMessage(s string) string {
	if len(s) <= maxConditionMessage {
		return s
	}
	const more = " (truncated)"
	cut := maxConditionMessage - len(more)
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
