package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// MemberlistSecretKey is the entry of the memberlist Secret that holds the
// speakers' gossip key the controller makes: the base64 encoding of
// MemberlistKeyBytes random bytes. A rotation adds entries "key-<suffix>"
// and "primary" (docs/reference.md, "The gossip key Secret"); the
// controller writes none of them.
const MemberlistSecretKey = "key"

// ReasonMemberlistSecretMissing is the reason of the Warning Event the
// controller records when the memberlist Secret is missing while speakers
// use gossip keys, and it does not make a new one.
const ReasonMemberlistSecretMissing = "MemberlistSecretMissing"

// MemberlistKeyBytes is the length of the gossip key the controller makes
// (AES-256).
const MemberlistKeyBytes = 32

// kindMemberlistSecret names the object-queue entry that ensures the
// memberlist Secret exists.
const kindMemberlistSecret = "MemberlistSecret"

// newMemberlistKey returns a fresh gossip key, base64-encoded.
func newMemberlistKey() ([]byte, error) {
	raw := make([]byte, MemberlistKeyBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("controller: random memberlist key: %w", err)
	}
	return []byte(base64.StdEncoding.EncodeToString(raw)), nil
}

// syncMemberlistSecret creates the speakers' memberlist Secret in Herald's
// namespace when it does not exist and no speaker uses gossip keys yet (a
// first install), or when MemberlistSecretRecreate allows it. It never
// changes an existing one, so a key a user made (or rotated) stays; Create
// cannot overwrite, so a Secret that appeared since the cache last looked
// is kept too.
//
// A Secret deleted while speakers run is not silently replaced: the
// running speakers keep their keys, and those that restart wait for the
// Secret (the kubelet cannot mount it), so nothing splits. The controller
// records a Warning Event on the missing Secret and sets
// herald_controller_memberlist_secret_missing, and the user recreates it
// (docs/security.md).
func (c *Controller) syncMemberlistSecret(ctx context.Context, name string) error {
	if _, err := c.secrets.Secrets(c.cfg.Namespace).Get(name); err == nil {
		c.m.memberlistMissing.Set(0)
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("controller: get memberlist secret %s/%s: %w", c.cfg.Namespace, name, err)
	}
	if !c.cfg.MemberlistSecretRecreate {
		statuses, err := c.herald.HeraldV1alpha1().SpeakerStatuses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("controller: list SpeakerStatuses to check the memberlist secret is new: %w", err)
		}
		if inUse, why := speakersUseGossipKeys(statuses.Items); inUse {
			c.m.memberlistMissing.Set(1)
			ref := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.cfg.Namespace}}
			msg := fmt.Sprintf("The speakers' gossip key Secret %s is missing, and %s, so the controller does not create one with a new key. "+
				"Running speakers keep their keys; restarted ones wait for the Secret. Recreate it with the key in use (from a backup), "+
				"or with a new key: the speakers rotate to it (docs/security.md).", name, why)
			if c.recorder != nil {
				c.recorder.Event(ref, corev1.EventTypeWarning, ReasonMemberlistSecretMissing, msg)
			}
			c.log.Warn("memberlist secret missing while speakers use gossip keys; not creating one", "secret", c.cfg.Namespace+"/"+name, "why", why)
			return nil
		}
	}
	key, err := newMemberlistKey()
	if err != nil {
		return err
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: c.cfg.Namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":       "herald",
				"app.kubernetes.io/component":  "speaker",
				"app.kubernetes.io/managed-by": FieldManager,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{MemberlistSecretKey: key},
	}
	_, err = c.kube.CoreV1().Secrets(c.cfg.Namespace).Create(ctx, sec, metav1.CreateOptions{FieldManager: FieldManager})
	switch {
	case apierrors.IsAlreadyExists(err):
		c.m.memberlistMissing.Set(0)
		return nil
	case err != nil:
		return fmt.Errorf("controller: create memberlist secret %s/%s: %w", c.cfg.Namespace, name, err)
	}
	c.m.memberlistMissing.Set(0)
	c.log.Info("created the speakers' memberlist secret", "secret", c.cfg.Namespace+"/"+name)
	return nil
}

// speakersUseGossipKeys reports whether any speaker has ever used gossip
// keys, and says which: a SpeakerStatus that reports a keyring (kept after
// its speaker stopped), or one that is Ready although it reports none (a
// speaker of an earlier version, which reads the same Secret). With
// neither, this is a first install.
func speakersUseGossipKeys(statuses []v1alpha1.SpeakerStatus) (bool, string) {
	var keyed, ready []string
	for _, s := range statuses {
		if s.Status.GossipKeys != nil {
			keyed = append(keyed, s.Name)
		} else if apimeta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) {
			ready = append(ready, s.Name)
		}
	}
	slices.Sort(keyed)
	slices.Sort(ready)
	switch {
	case len(keyed) > 0:
		return true, fmt.Sprintf("the speakers on %s report gossip keys", shortList(keyed))
	case len(ready) > 0:
		return true, fmt.Sprintf("the speakers on %s run", shortList(ready))
	}
	return false, ""
}

// shortList joins at most three names.
func shortList(names []string) string {
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more nodes", strings.Join(names[:3], ", "), len(names)-3)
}
