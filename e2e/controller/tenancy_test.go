package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/controller"
)

// TestSharingStaysInNamespace: a herald.dev/sharing-key only matches within
// its namespace. A Service in another namespace that sets the same key on
// other ports (a tenant who guessed or copied it) neither joins the address
// automatically nor gets it by asking for it; Services of one namespace
// still share.
func TestSharingStaysInNamespace(t *testing.T) {
	e := newEnv(t)
	e.namespace(t, "tenant-a", nil)
	e.namespace(t, "tenant-b", nil)
	e.createPool(t, "shared-pool", []string{"198.51.100.0/28"})
	e.startController(t, nil)

	e.createService(t, "tenant-a", "web", annotate(config.AnnotationSharingKey, "web"), withPorts(80))
	addr := e.waitAnyIngress(t, "tenant-a", "web", 1)[0]
	e.createService(t, "tenant-a", "api", annotate(config.AnnotationSharingKey, "web"), withPorts(443))
	e.waitIngress(t, "tenant-a", "api", addr)

	e.createService(t, "tenant-b", "joins", annotate(config.AnnotationSharingKey, "web"), withPorts(8080))
	if got := e.waitAnyIngress(t, "tenant-b", "joins", 1)[0]; got == addr {
		t.Errorf("tenant-b/joins got tenant-a's shared address %s by setting the same sharing key", addr)
	}
	e.createService(t, "tenant-b", "asks", annotate(config.AnnotationSharingKey, "web", config.AnnotationAddresses, addr), withPorts(8443))
	e.waitCondition(t, "tenant-b", "asks", config.ConditionAddressAllocated, metav1.ConditionFalse, controller.ReasonAddressInUse)
	if got := ingressIPs(e.getService(t, "tenant-b", "asks")); len(got) != 0 {
		t.Errorf("tenant-b/asks got %v", got)
	}
	e.waitClaimsMatch(t)
	if cl := e.getClaim(t, addr); cl == nil || len(cl.Spec.Holders) != 2 || cl.Spec.Holders[0].SharingKey != "web" {
		t.Errorf("claim of %s: %+v; want tenant-a's two Services, with the key as they set it", addr, cl)
	}
}
