package kubeinput

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	heraldfake "github.com/herald-dev/herald/config/generated/clientset/versioned/fake"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/kubeclient/kubeclienttest"
)

// TestSecretCacheFollowsPeers drives the speaker's informers with fake clientsets: a
// Secret that no BGPPeer selecting this node names is never listed, watched or cached,
// and the cache follows the peers and the node's labels as they change.
func TestSecretCacheFollowsPeers(t *testing.T) {
	const ns = "herald-system"
	secret := func(namespace, name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Data: map[string][]byte{"password": []byte("secret-of-" + name)}}
	}
	peer := func(name, rack, secretName string) *v1alpha1.BGPPeer {
		p := &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name}}
		p.Spec.PeerAddress = "198.51.100.1"
		p.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": rack}}}
		p.Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: secretName}
		return p
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1", Labels: map[string]string{"rack": "a"}}}
	kube := kubefake.NewClientset(node,
		secret(ns, "peer-a-password"), secret(ns, "peer-b-password"), secret(ns, "herald-memberlist"),
		secret("tenant-a", "peer-a-password"))
	herald := heraldfake.NewSimpleClientset(peer("peer-a", "a", "peer-a-password"), peer("peer-b", "b", "peer-b-password"))

	// The fake apiserver ignores field selectors: apply them as the real one
	// does, and record every selector the speaker asks Secrets with.
	var mu sync.Mutex
	var asked []string
	record := func(namespace string, sel fields.Selector) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, namespace+" "+sel.String())
	}
	gvr := corev1.SchemeGroupVersion.WithResource("secrets")
	kube.PrependReactor("list", "secrets", func(a clienttesting.Action) (bool, runtime.Object, error) {
		la := a.(clienttesting.ListActionImpl)
		sel := la.GetListRestrictions().Fields
		record(la.GetNamespace(), sel)
		obj, err := kube.Tracker().List(gvr, corev1.SchemeGroupVersion.WithKind("Secret"), la.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		list := obj.(*corev1.SecretList)
		list.Items = slices.DeleteFunc(list.Items, func(s corev1.Secret) bool { return !sel.Matches(fields.Set{"metadata.name": s.Name}) })
		return true, list, nil
	})
	kube.PrependWatchReactor("secrets", func(a clienttesting.Action) (bool, watch.Interface, error) {
		wa := a.(clienttesting.WatchActionImpl)
		sel := wa.GetWatchRestrictions().Fields
		record(wa.GetNamespace(), sel)
		w, err := kube.Tracker().Watch(gvr, wa.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		return true, watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
			s, ok := e.Object.(*corev1.Secret)
			return e, ok && sel.Matches(fields.Set{"metadata.name": s.Name})
		}), nil
	})

	in := NewInformers(kubeclienttest.ListWatches(kube, herald, "node1", ns), ns, NewInterner())
	var deleted []string
	in.SecretCache.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(o any) {
		mu.Lock()
		defer mu.Unlock()
		deleted = append(deleted, o.(*corev1.Secret).Name)
	}})
	if err := in.FollowPeers("node1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	in.Start(ctx)

	cached := func() []string {
		list, _ := in.Secrets.Secrets(ns).List(labels.Everything())
		var names []string
		for _, s := range list {
			names = append(names, s.Namespace+"/"+s.Name)
		}
		return names
	}
	waitFor := func(t *testing.T, want ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Equal(cached(), want) || len(in.SecretCache.Watched()) != len(want) {
			if time.Now().After(deadline) {
				t.Fatalf("cached Secrets %q, watched names %q; want %q", cached(), in.SecretCache.Watched(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	onlyAsked := func(t *testing.T, names ...string) {
		t.Helper()
		var allowed []string
		for _, n := range names {
			allowed = append(allowed, ns+" metadata.name="+n)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, a := range asked {
			if !slices.Contains(allowed, a) {
				t.Errorf("the speaker listed or watched Secrets with %q; only %q are needed", a, allowed)
			}
		}
	}

	t.Run("only the Secret of the peer selecting this node", func(t *testing.T) {
		waitFor(t, ns+"/peer-a-password")
		if s, err := in.Secrets.Secrets(ns).Get("peer-b-password"); err == nil {
			t.Errorf("Get(peer-b-password) = %s, want not found", s.Name)
		}
		if _, err := in.Secrets.Secrets("tenant-a").Get("peer-a-password"); err == nil {
			t.Error("Get(tenant-a/peer-a-password) found a Secret of another namespace")
		}
		onlyAsked(t, "peer-a-password")
	})
	t.Run("the node moves to the other rack", func(t *testing.T) {
		moved := node.DeepCopy()
		moved.Labels["rack"] = "b"
		if _, err := kube.CoreV1().Nodes().Update(ctx, moved, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ns+"/peer-b-password")
		onlyAsked(t, "peer-a-password", "peer-b-password")
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff([]string{"peer-a-password"}, deleted); diff != "" {
			t.Errorf("deletions seen by the handler (-want +got):\n%s", diff)
		}
	})
	t.Run("the peer goes", func(t *testing.T) {
		if err := herald.HeraldV1alpha1().BGPPeers().Delete(ctx, "peer-b", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t)
		onlyAsked(t, "peer-a-password", "peer-b-password")
	})
	mu.Lock()
	defer mu.Unlock()
	if len(asked) == 0 {
		t.Fatal("the speaker never asked for a Secret")
	}
}
