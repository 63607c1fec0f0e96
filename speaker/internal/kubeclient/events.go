package kubeclient

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
)

// EventSink returns the sink of the speaker's event broadcaster: it
// creates, updates and patches core/v1 Events in each Event's own
// namespace, as client-go's EventSinkImpl does, and returns the API
// server's errors as they are: the broadcaster tells by their type which
// to retry.
func (c *Client) EventSink() record.EventSink {
	return eventSink{core: c.core}
}

// eventSink writes Events through the core/v1 REST client. Its requests
// have no deadline but the client's, as EventSinkImpl's: the broadcaster
// stops sending when the speaker shuts it down.
type eventSink struct {
	core rest.Interface
}

func (s eventSink) Create(e *corev1.Event) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := s.core.Post().NamespaceIfScoped(e.Namespace, e.Namespace != "").Resource("events").
		Body(e).Do(context.Background()).Into(out)
	return out, err
}

func (s eventSink) Update(e *corev1.Event) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := s.core.Put().NamespaceIfScoped(e.Namespace, e.Namespace != "").Resource("events").Name(e.Name).
		Body(e).Do(context.Background()).Into(out)
	return out, err
}

// Patch applies a strategic merge patch, which is what the broadcaster's
// correlator sends (a count and a last timestamp).
func (s eventSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := s.core.Patch(types.StrategicMergePatchType).NamespaceIfScoped(e.Namespace, e.Namespace != "").
		Resource("events").Name(e.Name).Body(data).Do(context.Background()).Into(out)
	return out, err
}
