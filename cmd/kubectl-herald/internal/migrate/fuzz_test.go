package migrate

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzMigrate feeds any bytes to the decoder and every source's planner:
// they return errors and problems, never panic.
func FuzzMigrate(f *testing.F) {
	files, _ := filepath.Glob("testdata/metallb-configsamples/*.yaml")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [1]}\n"))
	f.Add([]byte("apiVersion: cilium.io/v2alpha1\nkind: CiliumLoadBalancerIPPool\nmetadata: {name: a}\nspec: {blocks: [{start: x}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, svcs, err := Decode("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		for _, p := range []*Plan{MetalLB(MetalLBInput{Objects: objs, Services: svcs}), Cilium(CiliumInput{Objects: objs, Services: svcs})} {
			if err := p.Write(&buf); err != nil {
				t.Fatal(err)
			}
		}
	})
}
