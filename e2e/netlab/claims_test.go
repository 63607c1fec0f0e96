package netlab

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-dev/herald/config"
	heraldclient "github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/controlplane"
)

// TestClaimHelpers writes and releases claims step by step against a real
// apiserver, whose CRD schema and CEL rules must accept every write.
func TestClaimHelpers(t *testing.T) {
	cp := controlplane.StartForTest(t, controlplane.Options{})
	c := heraldclient.NewForConfigOrDie(cp.Config())
	ctx := t.Context()
	service := func(name, uid string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID(uid)}}
	}
	web, api, webAgain := service("web", "u-web"), service("api", "u-api"), service("web", "u-web-2")
	holders := func(addr netip.Addr) []string {
		t.Helper()
		claim, err := c.HeraldV1alpha1().AddressClaims().Get(ctx, config.ClaimName(addr), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if int(claim.Spec.HolderCount) != len(claim.Spec.Holders) {
			t.Errorf("holderCount %d with %d holders", claim.Spec.HolderCount, len(claim.Spec.Holders))
		}
		var out []string
		for _, h := range claim.Spec.Holders {
			out = append(out, h.Namespace+"/"+h.Name+"/"+h.UID+"/"+h.As)
		}
		return out
	}
	v4, v6 := netip.MustParseAddr("198.51.100.140"), netip.MustParseAddr("2001:db8::")
	for _, step := range []struct {
		name string
		do   func() error
		addr netip.Addr
		want []string
	}{
		{"claim an IPv4 address", func() error { return WriteClaim(ctx, c, v4, "lan", web, v1alpha1.HolderLoadBalancer) }, v4,
			[]string{"shop/web/u-web/LoadBalancer"}},
		{"the same again changes nothing", func() error { return WriteClaim(ctx, c, v4, "lan", web, v1alpha1.HolderLoadBalancer) }, v4,
			[]string{"shop/web/u-web/LoadBalancer"}},
		{"a second holder", func() error { return WriteClaim(ctx, c, v4, "lan", api, v1alpha1.HolderLoadBalancer) }, v4,
			[]string{"shop/web/u-web/LoadBalancer", "shop/api/u-api/LoadBalancer"}},
		{"the Service created again replaces its former holder", func() error { return WriteClaim(ctx, c, v4, "lan", webAgain, v1alpha1.HolderLoadBalancer) }, v4,
			[]string{"shop/api/u-api/LoadBalancer", "shop/web/u-web-2/LoadBalancer"}},
		{"release one holder", func() error { return ReleaseClaim(ctx, c, v4, "shop", "api", v1alpha1.HolderLoadBalancer) }, v4,
			[]string{"shop/web/u-web-2/LoadBalancer"}},
		{"releasing as an external IP leaves the load-balancer holder", func() error { return ReleaseClaim(ctx, c, v4, "shop", "web", v1alpha1.HolderExternalIP) }, v4,
			[]string{"shop/web/u-web-2/LoadBalancer"}},
		{"release the last holder: the claim is deleted", func() error { return ReleaseClaim(ctx, c, v4, "shop", "web", "") }, v4, nil},
		{"releasing a missing claim is no error", func() error { return ReleaseClaim(ctx, c, v4, "shop", "web", "") }, v4, nil},
		{"claim an IPv6 address ending in ::, as an external IP", func() error { return WriteClaim(ctx, c, v6, "lan-v6", web, v1alpha1.HolderExternalIP) }, v6,
			[]string{"shop/web/u-web/ExternalIP"}},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if diff := cmp.Diff(step.want, holders(step.addr)); diff != "" {
			t.Fatalf("%s: holders (-want +got):\n%s", step.name, diff)
		}
	}
	if err := WriteClaim(ctx, c, v6, "other", api, v1alpha1.HolderExternalIP); err == nil {
		t.Errorf("claiming %s in another pool than its claim's succeeded, want an error", v6)
	}
}
