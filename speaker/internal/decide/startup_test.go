package decide

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestStartupWait(t *testing.T) {
	nodes := []string{"node1", "node2", "node3"}
	records := []SpeakerRecord{{Node: "node1"}, {Node: "node2"}, {Node: "node3"}}
	set := func(names ...string) map[string]bool {
		out := map[string]bool{}
		for _, n := range names {
			out[n] = true
		}
		return out
	}
	const bound = 10 * time.Second
	tests := []struct {
		name string
		view StartupView
		want StartupVerdict
	}{
		{
			name: "off",
			view: StartupView{Self: "node1", Nodes: nodes, Records: records, Alive: set("node1")},
			want: StartupVerdict{Outcome: StartupOff},
		},
		{
			name: "the cluster restarts: alone, it waits for the others' records",
			view: StartupView{Self: "node1", Nodes: nodes, Records: records, Alive: set("node1"), Waited: time.Second, Bound: bound},
			want: StartupVerdict{Outcome: StartupWaiting, Expected: []string{"node2", "node3"}, Missing: []string{"node2", "node3"}},
		},
		{
			name: "one more joined, still waiting for the last",
			view: StartupView{Self: "node1", Nodes: nodes, Records: records, Alive: set("node1", "node2"), Waited: 2 * time.Second, Bound: bound},
			want: StartupVerdict{Outcome: StartupWaiting, Expected: []string{"node2", "node3"}, Missing: []string{"node3"}},
		},
		{
			name: "every expected speaker is a member",
			view: StartupView{Self: "node1", Nodes: nodes, Records: records, Alive: set("node1", "node2", "node3"), Waited: 3 * time.Second, Bound: bound},
			want: StartupVerdict{Outcome: StartupJoined, Expected: []string{"node2", "node3"}},
		},
		{
			name: "the bound passed: a stale record's speaker never came",
			view: StartupView{Self: "node1", Nodes: nodes, Records: records, Alive: set("node1", "node2"), Waited: bound, Bound: bound},
			want: StartupVerdict{Outcome: StartupBound, Expected: []string{"node2", "node3"}, Missing: []string{"node3"}},
		},
		{
			name: "a restart in a live cluster: a running member answered, the missing one is not waited for",
			view: StartupView{Self: "node1", Nodes: nodes, Records: records, Alive: set("node1", "node2"), Started: set("node2"), Bound: bound},
			want: StartupVerdict{Outcome: StartupRunning},
		},
		{
			name: "the others stopped waiting first (their bound passed): a running member ends this wait too",
			view: StartupView{Self: "node2", Nodes: nodes, Records: records, Alive: set("node1", "node2"), Started: set("node1"), Waited: time.Second, Bound: bound},
			want: StartupVerdict{Outcome: StartupRunning},
		},
		{
			name: "a speaker the cluster saw die is not expected",
			view: StartupView{Self: "node1", Nodes: nodes, Records: []SpeakerRecord{{Node: "node1"}, {Node: "node2"}, {Node: "node3", Lost: true}},
				Alive: set("node1", "node2"), Waited: time.Second, Bound: bound},
			want: StartupVerdict{Outcome: StartupJoined, Expected: []string{"node2"}},
		},
		{
			name: "a Node without a record never ran a speaker: not expected",
			view: StartupView{Self: "node1", Nodes: append(nodes, "node4"), Records: records, Alive: set("node1", "node2", "node3"), Bound: bound},
			want: StartupVerdict{Outcome: StartupJoined, Expected: []string{"node2", "node3"}},
		},
		{
			name: "a record whose Node is gone is not expected",
			view: StartupView{Self: "node1", Nodes: []string{"node1", "node2"}, Records: records, Alive: set("node1", "node2"), Bound: bound},
			want: StartupVerdict{Outcome: StartupJoined, Expected: []string{"node2"}},
		},
		{
			name: "first install, no record at all: every other Node is expected",
			view: StartupView{Self: "node2", Nodes: nodes, Alive: set("node2", "node3"), Bound: bound},
			want: StartupVerdict{Outcome: StartupWaiting, Expected: []string{"node1", "node3"}, Missing: []string{"node1"}},
		},
		{
			name: "only this node's own record: nobody else ran a speaker",
			view: StartupView{Self: "node1", Nodes: nodes, Records: []SpeakerRecord{{Node: "node1"}}, Alive: set("node1"), Bound: bound},
			want: StartupVerdict{Outcome: StartupJoined},
		},
		{
			name: "a single-node cluster",
			view: StartupView{Self: "node1", Nodes: []string{"node1"}, Alive: set("node1"), Bound: bound},
			want: StartupVerdict{Outcome: StartupJoined},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, StartupWait(tt.view)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
