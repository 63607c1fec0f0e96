package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MemberlistSecretKey is the key of the memberlist Secret that holds the
// speakers' gossip key: the base64 encoding of MemberlistKeyBytes random
// bytes, which herald-speaker's --memberlist-secret-key-file accepts.
const MemberlistSecretKey = "key"

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
// namespace when it does not exist. It never changes an existing one, so a
// key a user made (or rotated) stays; Create cannot overwrite, so a Secret
// that appeared since the cache last looked is kept too.
func (c *Controller) syncMemberlistSecret(ctx context.Context, name string) error {
	if _, err := c.secrets.Secrets(c.cfg.Namespace).Get(name); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("controller: get memberlist secret %s/%s: %w", c.cfg.Namespace, name, err)
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
		return nil
	case err != nil:
		return fmt.Errorf("controller: create memberlist secret %s/%s: %w", c.cfg.Namespace, name, err)
	}
	c.log.Info("created the speakers' memberlist secret", "secret", c.cfg.Namespace+"/"+name)
	return nil
}
