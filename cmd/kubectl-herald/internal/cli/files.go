package cli

import (
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/herald-dev/herald/cmd/kubectl-herald/internal/migrate"
)

// readFiles decodes every object of the given files ("-" is stdin).
func readFiles(names []string) ([]*unstructured.Unstructured, []*corev1.Service, error) {
	var objs []*unstructured.Unstructured
	var svcs []*corev1.Service
	for _, name := range names {
		f := os.Stdin
		if name != "-" {
			var err error
			if f, err = os.Open(name); err != nil {
				return nil, nil, err
			}
		}
		o, s, err := migrate.Decode(name, f)
		if name != "-" {
			f.Close()
		}
		if err != nil {
			return nil, nil, err
		}
		objs = append(objs, o...)
		svcs = append(svcs, s...)
	}
	return objs, svcs, nil
}

func errUnexpectedArgs(args []string) error {
	return fmt.Errorf("unexpected arguments: %s", strings.Join(args, " "))
}
