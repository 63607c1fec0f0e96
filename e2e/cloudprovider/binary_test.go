package cloudprovider

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/herald-dev/herald/config"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/controller"
	"github.com/herald-dev/herald/e2e/cloudprovider/ccmlab"
	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
)

// TestCloudControllerManagerBinary runs herald-cloud-controller-manager, the command
// deploy/overlays/cloud-controller-manager ships, as a process against a real
// kube-apiserver, as the overlay does: beside herald-controller serving another class, and
// real speakers in network namespaces (speakerlab). The upstream service controller inside
// the binary gives a Service an address of the IPPool, recorded first in the address's
// AddressClaim; a speaker announces it over ARP and a client on the LAN reaches the Service
// through it; a crash of the manager and a new leader move nothing; deleting the Service
// releases its address and its claim to a Service that asked for it.
func TestCloudControllerManagerBinary(t *testing.T) {
	lab := speakerlab.New(t, speakerlab.Options{Nodes: 2})
	ctx := t.Context()
	bin := ccmlab.Build(t)
	if _, err := lab.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ccmlab.Namespace}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// herald-controller as the overlay runs it: another class.
	c, err := controller.New(controller.Config{
		RESTConfig: lab.CP.Config(), Namespace: ccmlab.Namespace, LoadBalancerClass: overlayControllerClass, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopController := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() { stopController(); <-done })
	claims := lab.Herald.HeraldV1alpha1().AddressClaims()
	start := func(name string) *ccmlab.Manager {
		return ccmlab.Start(t, ccmlab.Options{
			Binary: bin, Name: name, Kubeconfig: lab.CP.Kubeconfig,
			// A Service waiting for an address in use is tried again every second.
			CloudConfig: "waitingRetry: 1s\n",
			// A new leader takes over a crashed one's Lease within seconds.
			Args: []string{"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"},
		})
	}
	m := start("ccm-1")
	leader := waitLeader(t, lab, m, "")

	var addr netip.Addr
	t.Run("a Service gets a pool address, which a speaker announces and a client reaches", func(t *testing.T) {
		createLabService(t, lab, "web", nil)
		addr = waitLabIngress(t, lab, m, "web")
		if !netlab.L2PoolV4.Contains(addr) {
			t.Fatalf("web got %s, outside the pool's %s", addr, netlab.L2PoolV4)
		}
		claim, err := claims.Get(ctx, config.ClaimName(addr), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the AddressClaim of %s: %v", addr, err)
		}
		web := getLabService(t, lab, "web")
		if h := claim.Spec.Holders; claim.Spec.Pool != speakerlab.PoolName || len(h) != 1 || h[0].UID != string(web.UID) || h[0].As != v1alpha1.HolderLoadBalancer {
			t.Errorf("the AddressClaim of %s: %+v, want pool %s and web (%s) as its load-balancer holder", addr, claim.Spec, speakerlab.PoolName, web.UID)
		}
		lab.AddVIP(addr)
		if err := lab.SetEndpoints(ctx, "web", discoveryv1.AddressTypeIPv4, speakerlab.EndpointState{Node: "node2"}); err != nil {
			t.Fatal(err)
		}
		var answering []string
		netlab.Eventually(t, 20*time.Second, func(ctx context.Context) error {
			got, err := lab.Answering(ctx, addr)
			if err != nil {
				return err
			}
			answering = got
			if len(got) != 1 || !slices.Contains(lab.NodeNames(), got[0]) {
				return fmt.Errorf("%s answered by %v, want one node\n%s", addr, got, lab.Logs())
			}
			return nil
		})
		if got, err := lab.ConnectVIP(ctx, addr); err != nil || got != answering[0] {
			t.Errorf("TCP to %s reached %q (%v), want %s, the node that answers ARP", addr, got, err, answering[0])
		}
	})
	if !addr.IsValid() {
		t.Fatal("no address to carry on with")
	}

	t.Run("a crash of the manager and a new leader move nothing", func(t *testing.T) {
		before := getLabService(t, lab, "web").ResourceVersion
		m.Kill()
		m = start("ccm-2")
		leader = waitLeader(t, lab, m, leader)
		// A Service created now is served by the new leader: once it has an
		// address, the new leader has imported web's and synced it.
		createLabService(t, lab, "second", nil)
		if got := waitLabIngress(t, lab, m, "second"); got == addr {
			t.Fatalf("second got web's address %s", addr)
		}
		if now := getLabService(t, lab, "web"); now.ResourceVersion != before {
			t.Errorf("web was rewritten by the new leader: resourceVersion %s -> %s, status %+v", before, now.ResourceVersion, now.Status.LoadBalancer)
		}
		answeredByOneNode(t, lab, addr)
	})

	t.Run("deleting the Service releases its address to a Service that asked for it", func(t *testing.T) {
		createLabService(t, lab, "wants-it", map[string]string{config.AnnotationAddresses: addr.String()})
		waitLabEvent(t, lab, "wants-it", "SyncLoadBalancerFailed", controller.ReasonAddressInUse)
		if err := lab.DeleteService(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "web is deleted (the upstream controller removed its finalizer)", func() (bool, string) {
			_, err := lab.Kube.CoreV1().Services(speakerlab.Namespace).Get(ctx, "web", metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
		if got := waitLabIngress(t, lab, m, "wants-it"); got != addr {
			t.Errorf("wants-it got %s, want the released %s", got, addr)
		}
		wantsIt := getLabService(t, lab, "wants-it")
		claim, err := claims.Get(ctx, config.ClaimName(addr), metav1.GetOptions{})
		if err != nil || len(claim.Spec.Holders) != 1 || claim.Spec.Holders[0].UID != string(wantsIt.UID) {
			t.Errorf("the AddressClaim of %s: %+v (%v), want wants-it alone", addr, claim, err)
		}
	})

	t.Run("a Service that asks for another address moves, and leaves its old claim", func(t *testing.T) {
		moved := netip.MustParseAddr("198.51.100.190")
		svc := getLabService(t, lab, "wants-it")
		svc.Annotations[config.AnnotationAddresses] = moved.String()
		if _, err := lab.Kube.CoreV1().Services(speakerlab.Namespace).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "wants-it moves to "+moved.String(), func() (bool, string) {
			s, err := lab.Kube.CoreV1().Services(speakerlab.Namespace).Get(ctx, "wants-it", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			ing := s.Status.LoadBalancer.Ingress
			return len(ing) == 1 && ing[0].IP == moved.String(), fmt.Sprintf("%+v", ing)
		})
		// The upstream controller tells the provider nothing once the status no
		// longer names the old address: herald-controller removes the holder.
		eventually(t, "the claim of "+addr.String()+" goes", func() (bool, string) {
			c, err := claims.Get(ctx, config.ClaimName(addr), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, ""
			}
			return false, fmt.Sprintf("%+v %v", c.Spec.Holders, err)
		})
		if c, err := claims.Get(ctx, config.ClaimName(moved), metav1.GetOptions{}); err != nil || len(c.Spec.Holders) != 1 || c.Spec.Holders[0].Name != "wants-it" {
			t.Errorf("the AddressClaim of %s: %+v (%v), want wants-it alone", moved, c, err)
		}
	})

	t.Run("no claim of the manager was taken away", func(t *testing.T) {
		evs, err := lab.Kube.CoreV1().Events(speakerlab.Namespace).List(ctx, metav1.ListOptions{
			FieldSelector: "reason=" + controller.ReasonAddressClaimRestored})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs.Items {
			t.Errorf("%s on %s: %s (from %s)", ev.Reason, ev.InvolvedObject.Name, ev.Message, ev.Source.Component)
		}
	})

	t.Run("the command refuses controllers it does not run", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, bin, "--controllers=route", "--kubeconfig="+lab.CP.Kubeconfig, "--secure-port=0").CombinedOutput()
		if err == nil || !strings.Contains(string(out), `"route" is not in the list of known controllers`) {
			t.Errorf("--controllers=route: err %v, output:\n%s", err, out)
		}
	})
	m.Stop(t)
}

// overlayControllerClass is the class deploy/components/cloud-controller-manager gives
// herald-controller.
const overlayControllerClass = "herald.dev/herald"

// waitLeader waits until the Lease of the manager is held by someone other than
// previous (and not empty), and returns the holder.
func waitLeader(t *testing.T, lab *speakerlab.Lab, m *ccmlab.Manager, previous string) string {
	t.Helper()
	var holder string
	eventually(t, "the manager "+m.Name+" leads", func() (bool, string) {
		select {
		case <-m.Done():
			return false, fmt.Sprintf("it exited: %v\n%s", m.Err(), m.LogTail(30))
		default:
		}
		lease, err := lab.Kube.CoordinationV1().Leases(ccmlab.Namespace).Get(context.Background(), ccmlab.LeaseName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		holder = ptr.Deref(lease.Spec.HolderIdentity, "")
		return holder != "" && holder != previous, "holder " + holder
	})
	return holder
}

// createLabService creates a Service of type LoadBalancer without a class, without a
// status, in the lab's namespace, with the lab's port and stand-in pods.
func createLabService(t *testing.T, lab *speakerlab.Lab, name string, annotations map[string]string) {
	t.Helper()
	_, err := lab.Kube.CoreV1().Services(speakerlab.Namespace).Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			Ports:                         []corev1.ServicePort{{Name: "tcp", Port: speakerlab.ServicePort, TargetPort: intstr.FromInt32(speakerlab.ServicePort), Protocol: corev1.ProtocolTCP}},
			Selector:                      map[string]string{"app": name},
			AllocateLoadBalancerNodePorts: ptr.To(false),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
}

func getLabService(t *testing.T, lab *speakerlab.Lab, name string) *corev1.Service {
	t.Helper()
	s, err := lab.Kube.CoreV1().Services(speakerlab.Namespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get service %s: %v", name, err)
	}
	return s
}

// waitLabIngress waits until the Service's status lists one address, and returns it.
func waitLabIngress(t *testing.T, lab *speakerlab.Lab, m *ccmlab.Manager, name string) netip.Addr {
	t.Helper()
	var addr netip.Addr
	eventually(t, "service "+name+" has an address", func() (bool, string) {
		select {
		case <-m.Done():
			return false, fmt.Sprintf("the manager exited: %v\n%s", m.Err(), m.LogTail(30))
		default:
		}
		s, err := lab.Kube.CoreV1().Services(speakerlab.Namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ing := s.Status.LoadBalancer.Ingress
		if len(ing) != 1 {
			return false, fmt.Sprintf("ingress %+v", ing)
		}
		addr, err = netip.ParseAddr(ing[0].IP)
		return err == nil, fmt.Sprintf("ingress %+v", ing)
	})
	return addr
}

// waitLabEvent waits for an Event on the Service with reason and a message containing text.
func waitLabEvent(t *testing.T, lab *speakerlab.Lab, name, reason, text string) {
	t.Helper()
	eventually(t, fmt.Sprintf("event %s on %s mentioning %q", reason, name, text), func() (bool, string) {
		evs, err := lab.Kube.CoreV1().Events(speakerlab.Namespace).List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + name + ",reason=" + reason,
		})
		if err != nil {
			return false, err.Error()
		}
		var msgs []string
		for _, ev := range evs.Items {
			if strings.Contains(ev.Message, text) {
				return true, ev.Message
			}
			msgs = append(msgs, ev.Message)
		}
		return false, fmt.Sprintf("%q", msgs)
	})
}

// answeredByOneNode checks that exactly one node answers ARP for addr.
func answeredByOneNode(t *testing.T, lab *speakerlab.Lab, addr netip.Addr) {
	t.Helper()
	got, err := lab.Answering(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Errorf("%s answered by %v, want one node", addr, got)
	}
}
