package suite

import (
	"cmp"
	"slices"
	"testing"

	"github.com/herald-dev/herald/e2e/productlab"
)

// group is one file's scenarios.
type group struct {
	order int
	name  string
	run   func(t *testing.T, l *productlab.Lab)
}

var groups []group

// register adds a group of scenarios to the suite; groups run in order (then by
// name), each as a subtest of TestSuite with the shared lab.
func register(order int, name string, run func(t *testing.T, l *productlab.Lab)) {
	groups = append(groups, group{order, name, run})
}

func TestSuite(t *testing.T) {
	l := productlab.New(t, productlab.Options{ControllerReplicas: 2})
	slices.SortFunc(groups, func(a, b group) int {
		return cmp.Or(cmp.Compare(a.order, b.order), cmp.Compare(a.name, b.name))
	})
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			l := l.For(t)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("logs of the lab's daemons:\n%s", l.Logs(40))
				}
			})
			g.run(t, l)
		})
	}
}
