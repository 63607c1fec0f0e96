package kubeclient

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// Events returns the writer of the speaker's Events (the sink of package
// events' recorder).
func (c *Client) Events() EventWriter {
	return EventWriter{core: c.core}
}

// EventWriter creates and patches core/v1 Events in each Event's own
// namespace, and returns the API server's errors as they are: the
// recorder tells by their type which to retry. (The speaker's role may
// create and patch Events, not update them.)
type EventWriter struct {
	core rest.Interface
}

// Create creates e.
func (w EventWriter) Create(ctx context.Context, e *corev1.Event) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := w.core.Post().Namespace(e.Namespace).Resource("events").Body(e).Do(ctx).Into(out)
	return out, err
}

// Patch applies a JSON merge patch to the Event namespace/name.
func (w EventWriter) Patch(ctx context.Context, namespace, name string, mergePatch []byte) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := w.core.Patch(types.MergePatchType).Namespace(namespace).Resource("events").Name(name).
		Body(mergePatch).Do(ctx).Into(out)
	return out, err
}
