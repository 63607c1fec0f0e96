package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	heraldlisters "github.com/herald-dev/herald/config/generated/listers/config/v1alpha1"
	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/speaker/internal/decide"
)

// FieldManager is the field manager of every write the speaker makes.
const FieldManager = "herald-speaker"

// Layer2Status builds the Layer2 list of a SpeakerStatus from a desired
// state: one entry per address and Service, sorted by address then
// Service. since gives when this node took each address.
func Layer2Status(d decide.Desired, since map[netip.Addr]time.Time) []v1alpha1.Layer2Announcement {
	addrs := make([]netip.Addr, 0, len(d.Layer2))
	for a := range d.Layer2 {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	var out []v1alpha1.Layer2Announcement
	for _, a := range addrs {
		e := d.Layer2[a]
		for _, k := range e.Services {
			out = append(out, v1alpha1.Layer2Announcement{
				Address:    a.String(),
				Service:    k.String(),
				Interfaces: slices.Clone(e.Interfaces),
				Since:      metav1.NewTime(since[a].Truncate(time.Second)),
			})
		}
	}
	return out
}

// DistinctAddresses counts the addresses in a sorted layer-2 status list,
// where an address shared by several Services has one entry per Service.
func DistinctAddresses(l2 []v1alpha1.Layer2Announcement) int {
	n := 0
	for i, a := range l2 {
		if i == 0 || a.Address != l2[i-1].Address {
			n++
		}
	}
	return n
}

// StatusWriter keeps this node's SpeakerStatus true. The reconcile loop
// hands it the latest status (update never blocks); one goroutine writes
// it, at most once per interval (longer for a large record, writeSpacing),
// so a burst of Service changes costs one write, and retries failures. It
// also marks the records of speakers that membership lost as not ready
// (markGone).
type StatusWriter struct {
	client   StatusClient
	lister   heraldlisters.SpeakerStatusLister
	node     string
	interval time.Duration
	// nodeUID returns the UID of this node's Node, for the owner reference
	// (so the record goes with the Node); empty when unknown.
	nodeUID func() types.UID
	onWrite func(err error)

	mu      sync.Mutex
	pending *v1alpha1.SpeakerStatusStatus
	gossip  *v1alpha1.GossipKeyStatus // written with every status
	kick    chan struct{}
	written *v1alpha1.SpeakerStatusStatus
	marked  map[string]time.Time // records marked not ready, when
}

// StatusClient is what the writer asks of the API server about
// SpeakerStatus records: the speaker's narrow client
// (kubeclient.SpeakerStatusClient), or Herald's generated typed client in
// tests.
type StatusClient interface {
	Create(ctx context.Context, obj *v1alpha1.SpeakerStatus, opts metav1.CreateOptions) (*v1alpha1.SpeakerStatus, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*v1alpha1.SpeakerStatus, error)
	List(ctx context.Context, opts metav1.ListOptions) (*v1alpha1.SpeakerStatusList, error)
}

// NewStatusWriter returns the writer of node's SpeakerStatus through
// client, reading its own record from lister.
func NewStatusWriter(client StatusClient, lister heraldlisters.SpeakerStatusLister, node string, interval time.Duration, nodeUID func() types.UID, onWrite func(error)) *StatusWriter {
	return &StatusWriter{
		client: client, lister: lister, node: node, interval: interval, nodeUID: nodeUID, onWrite: onWrite,
		kick: make(chan struct{}, 1), marked: map[string]time.Time{},
	}
}

// SetGossipKeys makes g the gossip keyring written with every status from
// now on (the loop's status leaves it out).
func (w *StatusWriter) SetGossipKeys(g *v1alpha1.GossipKeyStatus) {
	w.mu.Lock()
	w.gossip = g
	w.mu.Unlock()
	w.poke()
}

// Update makes s the status to write next.
func (w *StatusWriter) Update(s v1alpha1.SpeakerStatusStatus) {
	w.mu.Lock()
	w.pending = &s
	w.mu.Unlock()
	w.poke()
}

func (w *StatusWriter) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Recheck asks the writer to compare the stored record with what it wrote,
// after the record changed (another speaker may have marked it not ready
// during a partition).
func (w *StatusWriter) Recheck() { w.poke() }

// Run writes until ctx is done.
func (w *StatusWriter) Run(ctx context.Context) {
	backoff := w.interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		err := w.Flush(ctx)
		if w.onWrite != nil && err != ErrUnchanged {
			w.onWrite(err)
		}
		wait := w.interval
		if err == nil {
			w.mu.Lock()
			wait = writeSpacing(w.interval, len(w.written.Layer2))
			w.mu.Unlock()
		}
		if err != nil && err != ErrUnchanged {
			backoff = min(2*backoff, 30*time.Second)
			wait = backoff
			w.poke()
		} else {
			backoff = w.interval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// writeSpacing is how long the writer waits after writing a record of
// entries layer-2 entries: interval, and at least perEntrySpacing per
// entry. The API server's cost of a write grows with the record (about
// 100 ms of CPU for 3,300 entries in the lab, docs/figures.md), so a node
// that announces thousands of addresses writes less often (3.3 s apart at
// 3,300): what its writes cost the API server stays bounded, whatever its
// size, and a burst of changes still costs one write.
func writeSpacing(interval time.Duration, entries int) time.Duration {
	return max(interval, time.Duration(entries)*perEntrySpacing)
}

// perEntrySpacing is the spacing of writes per entry of the record.
const perEntrySpacing = time.Millisecond

// ErrUnchanged is what Flush returns when the record is as it wrote it.
var ErrUnchanged = errors.New("report: status unchanged")

// Flush writes the pending status when it differs from the last one
// written, or when the stored record no longer says this speaker is ready.
func (w *StatusWriter) Flush(ctx context.Context) error {
	w.mu.Lock()
	s := w.pending
	if s != nil {
		withKeys := *s
		withKeys.GossipKeys = w.gossip
		s = &withKeys
	}
	written := w.written
	w.mu.Unlock()
	if s == nil {
		return ErrUnchanged
	}
	if written != nil && reflect.DeepEqual(*s, *written) && w.storedMatches() {
		return ErrUnchanged
	}
	if err := w.write(ctx, *s); err != nil {
		return err
	}
	w.mu.Lock()
	w.written = s
	w.mu.Unlock()
	return nil
}

// storedMatches reports whether the cached record is ready, as this
// speaker last wrote it.
func (w *StatusWriter) storedMatches() bool {
	obj, err := w.lister.Get(w.node)
	if err != nil {
		return false
	}
	c := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue
}

// write stores s as this node's status: a merge patch of the status
// subresource, which replaces the lists whole. It creates the record first
// when it does not exist.
func (w *StatusWriter) write(ctx context.Context, s v1alpha1.SpeakerStatusStatus) error {
	patch, err := statusPatch(s)
	if err != nil {
		return err
	}
	_, err = w.client.Patch(ctx, w.node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}, "status")
	if apierrors.IsNotFound(err) {
		obj := &v1alpha1.SpeakerStatus{ObjectMeta: metav1.ObjectMeta{Name: w.node}}
		if uid := w.nodeUID(); uid != "" {
			obj.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: w.node, UID: uid}}
		}
		if _, err = w.client.Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("speaker: create SpeakerStatus %s: %w", w.node, err)
		}
		_, err = w.client.Patch(ctx, w.node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}, "status")
	}
	if err != nil {
		return fmt.Errorf("speaker: write SpeakerStatus %s: %w", w.node, err)
	}
	return nil
}

// statusPatch returns a merge patch setting the whole status to s. Fields
// that are empty in s are sent as null: a merge patch leaves out fields
// unchanged, and omitempty would leave a withdrawn list in place. The
// fields are split at the top level only (json.RawMessage), so a record of
// thousands of entries is encoded once, not decoded into maps and encoded
// again (BenchmarkStatusPatch).
func statusPatch(s v1alpha1.SpeakerStatusStatus) ([]byte, error) {
	m, err := nullFilled(s, "conditions", "members", "layer2", "bgpSessions", "gossipKeys")
	if err != nil {
		return nil, fmt.Errorf("speaker: encode status: %w", err)
	}
	// A merge patch merges objects field by field: the keyring's fields
	// that are now empty are sent as null too, or a stale list stays.
	if s.GossipKeys != nil {
		g, err := nullFilled(*s.GossipKeys, "installed", "waiting", "secretProblem")
		if err == nil {
			m["gossipKeys"], err = json.Marshal(g)
		}
		if err != nil {
			return nil, fmt.Errorf("speaker: encode status: %w", err)
		}
	}
	return json.Marshal(map[string]map[string]json.RawMessage{"status": m})
}

// nullFilled returns v's JSON object's fields, with each of keys that v
// leaves out (omitempty) set to null.
func nullFilled(v any, keys ...string) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			m[k] = json.RawMessage("null")
		}
	}
	return m, nil
}

// MarkGone marks the records of the speakers not in alive as not ready
// and clears their announcements, so the record stays true after a crash
// or a node failure. Only one live speaker does it at a time (the caller
// checks it is the first live member by name). A record is marked at most
// once per remark interval, and only if its resourceVersion is still the
// one listed, so a speaker that came back and rewrote its record in the
// meantime wins.
func (w *StatusWriter) MarkGone(ctx context.Context, alive map[string]bool, now time.Time) error {
	const remark = 30 * time.Second
	// A list from the API server's watch cache: the speaker's own cache
	// holds its own record only (kubeclient.ListWatches.OwnStatus).
	list, err := w.client.List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return fmt.Errorf("speaker: list SpeakerStatuses: %w", err)
	}
	objs := make([]*v1alpha1.SpeakerStatus, len(list.Items))
	for i := range list.Items {
		objs[i] = &list.Items[i]
	}
	slices.SortFunc(objs, func(a, b *v1alpha1.SpeakerStatus) int { return strings.Compare(a.Name, b.Name) })
	w.forgetMarked(objs)
	var errs []error
	for _, o := range objs {
		if alive[o.Name] {
			continue
		}
		c := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady)
		if c != nil && c.Status != metav1.ConditionTrue {
			continue
		}
		w.mu.Lock()
		last, seen := w.marked[o.Name]
		w.mu.Unlock()
		if seen && now.Sub(last) < remark {
			continue
		}
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": o.ResourceVersion},
			"status": map[string]any{
				"conditions": []metav1.Condition{{
					Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.SpeakerReasonNotAlive,
					Message:            fmt.Sprintf("Speaker %s lost contact with this node's speaker; its announcements were moved to other nodes.", w.node),
					LastTransitionTime: metav1.NewTime(now),
				}},
				"layer2":      nil,
				"bgpSessions": nil,
				"members":     nil,
			},
		})
		_, err := w.client.Patch(ctx, o.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}, "status")
		if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("speaker: mark SpeakerStatus %s not ready: %w", o.Name, err))
			continue
		}
		w.mu.Lock()
		w.marked[o.Name] = now
		w.mu.Unlock()
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// SpeakerRecords lists every node's SpeakerStatus record, for the
// start-up wait (decide.StartupWait): which nodes ran a speaker, and
// which of those a surviving speaker marked lost. A list from the API
// server's watch cache, like MarkGone's.
func (w *StatusWriter) SpeakerRecords(ctx context.Context) ([]decide.SpeakerRecord, error) {
	list, err := w.client.List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return nil, fmt.Errorf("speaker: list SpeakerStatuses: %w", err)
	}
	out := make([]decide.SpeakerRecord, 0, len(list.Items))
	for _, o := range list.Items {
		c := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady)
		lost := c != nil && c.Status != metav1.ConditionTrue && c.Reason == v1alpha1.SpeakerReasonNotAlive
		out = append(out, decide.SpeakerRecord{Node: o.Name, Lost: lost})
	}
	return out, nil
}

// forgetMarked forgets when the records no longer listed (their Node,
// and so the record, was deleted) were marked.
func (w *StatusWriter) forgetMarked(listed []*v1alpha1.SpeakerStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name := range w.marked {
		if !slices.ContainsFunc(listed, func(o *v1alpha1.SpeakerStatus) bool { return o.Name == name }) {
			delete(w.marked, name)
		}
	}
}

// FinalWrite records that this speaker stopped: not ready, nothing
// announced. The gossip keyring stays: the controller reads it to know
// that speakers ran with the Secret's keys.
func (w *StatusWriter) FinalWrite(ctx context.Context, now time.Time) error {
	w.mu.Lock()
	gossip := w.gossip
	w.mu.Unlock()
	return w.write(ctx, v1alpha1.SpeakerStatusStatus{
		Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.SpeakerReasonStopped,
			Message: "The speaker shut down and handed its addresses over.", LastTransitionTime: metav1.NewTime(now),
		}},
		GossipKeys: gossip,
	})
}
