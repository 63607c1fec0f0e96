package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/config/generated/clientset/versioned"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/speaker"
)

// speakerTestNode is the Node the in-process speaker runs as.
const speakerTestNode = "deploy-test-node"

// testSpeakerUnderRBAC runs the real speaker in this process with the identity of its
// service account (a real token bound to a Pod on its node, so the apiserver applies
// exactly the RBAC and admission policies deploy/ ships) and checks that it does its job: its informers sync (every list and watch it
// makes is allowed), it applies its first desired state, and it creates and keeps its
// node's SpeakerStatus. No L2Advertisement exists, so it announces nothing and opens no
// raw socket; membership listens on loopback only.
func testSpeakerUnderRBAC(t *testing.T, cp *controlplane.ControlPlane) {
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	adminHerald := versioned.NewForConfigOrDie(cp.Config())
	if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: speakerTestNode},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	port := freeLoopbackPort(t)

	// A token bound to a Pod on the node, as the kubelet mounts: the policy of
	// deploy/speaker/status-policy.yaml lets the speaker write its node's record only
	// with it.
	cfg, err := cp.PodBoundServiceAccountConfig(ctx, namespace, speakerAccount, speakerTestNode)
	if err != nil {
		t.Fatal(err)
	}
	cfg.WarningHandler = rest.NoWarnings{}
	var logs lockedBuffer
	health := &speaker.Health{}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() {
		done <- speaker.Run(runCtx, speaker.Config{
			NodeName:                speakerTestNode,
			RESTConfig:              cfg,
			Namespace:               namespace,
			Health:                  health,
			Logger:                  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			MemberlistBindAddr:      "127.0.0.1",
			MemberlistPort:          port,
			MemberlistAdvertiseAddr: "127.0.0.1",
		})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("speaker.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("the speaker did not stop within 30s of its context's end")
		}
		if t.Failed() {
			t.Logf("speaker log:\n%s", logs.String())
		}
	})

	const timeout = time.Minute
	if !t.Run("syncs its caches and becomes ready", func(t *testing.T) {
		eventually(t, timeout, func() error {
			select {
			case err := <-done:
				done <- err
				return fmt.Errorf("the speaker stopped: %v", err)
			default:
			}
			return health.Ready()
		})
	}) {
		t.Fatal("the speaker never became ready under its RBAC: a list or watch it makes is " +
			"forbidden (client-go's reflector logs which one on standard error), or it failed to start")
	}
	t.Run("creates its SpeakerStatus and reports itself running", func(t *testing.T) {
		eventually(t, timeout, func() error {
			rec, err := adminHerald.HeraldV1alpha1().SpeakerStatuses().Get(ctx, speakerTestNode, metav1.GetOptions{})
			if err != nil {
				return err
			}
			ready := apimeta.FindStatusCondition(rec.Status.Conditions, v1alpha1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionTrue || ready.Reason != v1alpha1.SpeakerReasonRunning {
				return fmt.Errorf("Ready condition is %+v, want True/%s", ready, v1alpha1.SpeakerReasonRunning)
			}
			if rec.Status.Members < 1 {
				return fmt.Errorf("members = %d, want at least itself", rec.Status.Members)
			}
			return nil
		})
	})
	t.Run("records its stop on the way out", func(t *testing.T) {
		stop()
		eventually(t, timeout, func() error {
			rec, err := adminHerald.HeraldV1alpha1().SpeakerStatuses().Get(ctx, speakerTestNode, metav1.GetOptions{})
			if err != nil {
				return err
			}
			ready := apimeta.FindStatusCondition(rec.Status.Conditions, v1alpha1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != v1alpha1.SpeakerReasonStopped {
				return fmt.Errorf("Ready condition is %+v, want False/%s", ready, v1alpha1.SpeakerReasonStopped)
			}
			return nil
		})
	})
}

// freeLoopbackPort returns a port that is free for both TCP and UDP on 127.0.0.1 at the
// time of the call, as membership listens on both.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP on 127.0.0.1")
	return 0
}
