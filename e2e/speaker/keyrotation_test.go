package speaker_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/e2e/netlab"
	"github.com/herald-dev/herald/e2e/productlab"
	"github.com/herald-dev/herald/e2e/speaker/speakerlab"
	"github.com/herald-dev/herald/speaker"
)

// TestGossipKeyRotation rotates the speakers' gossip key in the three
// edits of docs/security.md while a client opens a connection to a
// layer-2 address every 10 ms, and checks that no connection fails, the
// address never moves, and every speaker sees the three alive throughout.
//
// The lab has no kubelet: the test edits the real Secret through the API
// and, standing in for each node's kubelet, projects it into that node's
// mounted directory (the kubelet's layout, swapped in at once) at its own
// moment. The second edit reaches node1 while node3 still has the Secret
// from before the first: node1 must keep encrypting with the old key until
// node3 has the new one. At the end a speaker started with only the old
// key is partitioned from the others, until its Secret catches up.
func TestGossipKeyRotation(t *testing.T) {
	lab := speakerlab.New(t, speakerlab.Options{Nodes: 4, NoSpeakers: true})
	ctx := t.Context()
	const secretName = "herald-memberlist"
	secrets := lab.Kube.CoreV1().Secrets("herald-system")
	if _, err := lab.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "herald-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	oldKey, newKey := randomKey(t), randomKey(t)
	fpOld, fpNew := fingerprint(t, oldKey), fingerprint(t, newKey)
	sec, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName},
		Data: map[string][]byte{"key": oldKey}}, metav1.CreateOptions{})
	must(t, err)

	// node4 stays out of the elections (excluded from load balancers): it
	// is the stale speaker at the end.
	exclude := ""
	must(t, lab.SetNodeLabel(ctx, "node4", corev1.LabelNodeExcludeBalancers, &exclude))
	running := lab.Nodes[:3]
	mounts := map[string]*secretMount{}
	for _, n := range lab.Nodes {
		mounts[n.Name] = newSecretMount(t, filepath.Join(lab.Net.Dir(), "memberlist-"+n.Name))
	}
	for _, n := range running {
		mounts[n.Name].project(t, sec.Data)
		lab.StartSpeaker(n, "--memberlist-keys-dir="+mounts[n.Name].dir)
	}
	for _, n := range running {
		lab.WaitReady(n)
	}
	lab.WaitMembers(3)
	waitKeys(t, lab, running, fpOld, fpOld)

	addr := lbAddr(v4, 9)
	lab.AddVIP(addr)
	must(t, lab.CreateService(ctx, speakerlab.ServiceSpec{Name: "keys", Addresses: []netip.Addr{addr}}))
	must(t, lab.SetEndpoints(ctx, "keys", v4, speakerlab.EndpointState{Node: "node1"}, speakerlab.EndpointState{Node: "node2"}, speakerlab.EndpointState{Node: "node3"}))
	owner := speaker.Ranking(addr, []string{"node1", "node2", "node3"})[0]
	answeredBy(t, lab, addr, 10*time.Second, owner)

	// Watchers: who answers ARP for the address, every speaker's live
	// member count, and a client connecting every 10 ms.
	arp, err := lab.WatchARP()
	must(t, err)
	defer arp.Close()
	ownerMAC := lab.Node(owner).Link.MAC.String()
	var mu sync.Mutex
	var foreignARP []string
	arp.OnFrame(func(f speakerlab.ARPFrame) {
		if f.Reply && f.SenderIP == addr && f.SenderMAC.String() != ownerMAC {
			mu.Lock()
			foreignARP = append(foreignARP, fmt.Sprintf("%s at %s", f.SenderMAC, f.At.Format(time.StampMilli)))
			mu.Unlock()
		}
	})
	members := watchMembers(t, lab, running, 3)
	// The lab's stand-in server answers with its node's name.
	target := netip.AddrPortFrom(addr, speakerlab.ServicePort)
	probe := productlab.StartProberFunc(func(ctx context.Context) (string, error) {
		reply, err := lab.Client.Connect(ctx, target)
		return strings.TrimSpace(reply), err
	}, 10*time.Millisecond, time.Second)
	time.Sleep(time.Second)

	// Edit 1: add the new key. The kubelets of node1 and node2 project
	// it; node3's lags.
	sec = editSecret(t, secrets, secretName, func(d map[string][]byte) {
		d["key-2"] = newKey
		d["primary"] = []byte("key")
	})
	mounts["node1"].project(t, sec.Data)
	mounts["node2"].project(t, sec.Data)
	waitKeys(t, lab, running[:2], fpOld, fpOld, fpNew)

	// Edit 2, before node3 has the new key (the operator did not wait):
	// node1 sees it, installs nothing new, and keeps encrypting with the
	// old key, saying what it waits for.
	sec = editSecret(t, secrets, secretName, func(d map[string][]byte) { d["primary"] = []byte("key-2") })
	mounts["node1"].project(t, sec.Data)
	netlab.Eventually(t, 10*time.Second, func(ctx context.Context) error {
		st, err := lab.Herald.HeraldV1alpha1().SpeakerStatuses().Get(ctx, "node1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if k := st.Status.GossipKeys; k == nil || len(k.Waiting) == 0 {
			return fmt.Errorf("node1's gossip keys %+v: want a step waiting for node3", k)
		}
		return nil
	})
	for range 10 {
		v, err := lab.Metric(ctx, lab.Node("node1"), "herald_speaker_gossip_key", `fingerprint="`+fpOld+`"`, `primary="true"`)
		if err != nil || v != 1 {
			t.Fatalf("node1 switched its primary key before node3 had the new one: %v %v", v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// node3's kubelet catches up with both edits at once, node2's with
	// the second: everyone encrypts with the new key.
	mounts["node3"].project(t, sec.Data)
	mounts["node2"].project(t, sec.Data)
	waitKeys(t, lab, running, fpNew, fpOld, fpNew)

	// Edit 3: remove the old key, each node's kubelet at its own moment.
	sec = editSecret(t, secrets, secretName, func(d map[string][]byte) { delete(d, "key") })
	for _, n := range running {
		mounts[n.Name].project(t, sec.Data)
		time.Sleep(500 * time.Millisecond)
	}
	waitKeys(t, lab, running, fpNew, fpNew)
	time.Sleep(2 * time.Second)

	attempts := probe.Stop()
	broken := members.stop()
	arp.Close()
	var failed, elsewhere []string
	for _, a := range attempts {
		switch {
		case a.Err != nil:
			failed = append(failed, fmt.Sprintf("%s: %v", a.Start.Format(time.StampMilli), a.Err))
		case a.Pod != owner:
			elsewhere = append(elsewhere, fmt.Sprintf("%s: %s", a.Start.Format(time.StampMilli), a.Pod))
		}
	}
	t.Logf("%d connections during the rotation, %d failed, %d reached another node than %s", len(attempts), len(failed), len(elsewhere), owner)
	if len(attempts) < 500 {
		t.Errorf("only %d connections: the client did not probe every 10 ms", len(attempts))
	}
	if len(failed) > 0 {
		t.Errorf("connections failed during the rotation: %v", head(failed, 10))
	}
	if len(elsewhere) > 0 {
		t.Errorf("the address moved during the rotation: %v", head(elsewhere, 10))
	}
	mu.Lock()
	if len(foreignARP) > 0 {
		t.Errorf("another node than %s answered ARP for %s: %v", owner, addr, head(foreignARP, 10))
	}
	mu.Unlock()
	if len(broken) > 0 {
		t.Errorf("the membership was not whole during the rotation: %v\n%s", head(broken, 10), lab.Logs())
	}

	// A speaker with only the old key cannot join: it sees itself alone,
	// the others go on seeing three.
	stale := lab.Node("node4")
	mounts["node4"].project(t, map[string][]byte{"key": oldKey})
	lab.StartSpeaker(stale, "--memberlist-keys-dir="+mounts["node4"].dir)
	lab.WaitReady(stale)
	time.Sleep(5 * time.Second) // the stale speaker's join attempts, and a rejoin round of the others (every 2 s)
	for _, n := range lab.Nodes {
		want := 3.0
		if n == stale {
			want = 1
		}
		got, err := lab.Metric(ctx, n, "herald_speaker_members", `state="alive"`)
		if err != nil || got != want {
			t.Errorf("speaker on %s sees %v live members (%v), want %v: the old key must no longer reach the others", n.Name, got, err, want)
		}
	}
	answeredBy(t, lab, addr, 2*time.Second, owner)

	// Its kubelet catches up: it takes the new key live and joins.
	mounts["node4"].project(t, sec.Data)
	lab.WaitMembers(4)
	waitKeys(t, lab, lab.Nodes, fpNew, fpNew)
}

// secretMount is a Secret volume as the kubelet lays it out: each entry
// a link through "..data" to a timestamped directory, "..data" replaced
// at once for each new version.
type secretMount struct {
	dir      string
	versions int
}

func newSecretMount(t *testing.T, dir string) *secretMount {
	must(t, os.MkdirAll(dir, 0o700))
	return &secretMount{dir: dir}
}

func (m *secretMount) project(t *testing.T, data map[string][]byte) {
	t.Helper()
	m.versions++
	name := fmt.Sprintf("..v%d", m.versions)
	must(t, os.Mkdir(filepath.Join(m.dir, name), 0o700))
	for k, v := range data {
		must(t, os.WriteFile(filepath.Join(m.dir, name, k), v, 0o400))
	}
	tmp := filepath.Join(m.dir, "..data_tmp")
	must(t, os.Symlink(name, tmp))
	must(t, os.Rename(tmp, filepath.Join(m.dir, "..data")))
	// The entries' links: added for new entries, removed for gone ones.
	entries, err := os.ReadDir(m.dir)
	must(t, err)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") && data[e.Name()] == nil {
			must(t, os.Remove(filepath.Join(m.dir, e.Name())))
		}
	}
	for k := range data {
		if _, err := os.Lstat(filepath.Join(m.dir, k)); err != nil {
			must(t, os.Symlink(filepath.Join("..data", k), filepath.Join(m.dir, k)))
		}
	}
}

func randomKey(t *testing.T) []byte {
	raw := make([]byte, 32)
	_, err := rand.Read(raw)
	must(t, err)
	return []byte(base64.StdEncoding.EncodeToString(raw))
}

// fingerprint is what docs/security.md tells the operator to run:
// base64 -d | sha256sum | cut -c1-8.
func fingerprint(t *testing.T, b64 []byte) string {
	raw, err := base64.StdEncoding.DecodeString(string(b64))
	must(t, err)
	return fmt.Sprintf("%x", sha256.Sum256(raw))[:8]
}

func editSecret(t *testing.T, secrets interface {
	Get(context.Context, string, metav1.GetOptions) (*corev1.Secret, error)
	Update(context.Context, *corev1.Secret, metav1.UpdateOptions) (*corev1.Secret, error)
}, name string, edit func(map[string][]byte)) *corev1.Secret {
	t.Helper()
	sec, err := secrets.Get(t.Context(), name, metav1.GetOptions{})
	must(t, err)
	edit(sec.Data)
	sec, err = secrets.Update(t.Context(), sec, metav1.UpdateOptions{})
	must(t, err)
	return sec
}

// waitKeys waits until the SpeakerStatus of every node in nodes reports
// primary and exactly installed, nothing waiting: what the operator
// watches between two edits.
func waitKeys(t *testing.T, lab *speakerlab.Lab, nodes []*speakerlab.Node, primary string, installed ...string) {
	t.Helper()
	slices.Sort(installed)
	installed = slices.Compact(installed)
	check := func() error {
		for _, n := range nodes {
			st, err := lab.Herald.HeraldV1alpha1().SpeakerStatuses().Get(t.Context(), n.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			k := st.Status.GossipKeys
			if k == nil || k.Primary != primary || !slices.Equal(k.Installed, installed) || len(k.Waiting) > 0 {
				return fmt.Errorf("SpeakerStatus %s: gossip keys %+v, want primary %s, installed %v", n.Name, k, primary, installed)
			}
		}
		return nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for err := check(); err != nil; err = check() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %v\n%s", err, lab.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// memberWatch polls every speaker's live member count until stop, and
// records each reading that is not want.
type memberWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	broken []string
}

func watchMembers(t *testing.T, lab *speakerlab.Lab, nodes []*speakerlab.Node, want int) *memberWatch {
	ctx, cancel := context.WithCancel(t.Context())
	w := &memberWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			for _, n := range nodes {
				got, err := lab.Metric(ctx, n, "herald_speaker_members", `state="alive"`)
				if ctx.Err() != nil {
					return
				}
				if err != nil || int(got) != want {
					w.broken = append(w.broken, fmt.Sprintf("%s %s saw %v live members (%v)", time.Now().Format(time.StampMilli), n.Name, got, err))
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return w
}

func (w *memberWatch) stop() []string {
	w.cancel()
	<-w.done
	return w.broken
}

func head(s []string, n int) []string { return s[:min(len(s), n)] }
