package kubeclient

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/herald-dev/herald/config/v1alpha1"
)

// SpeakerStatuses returns the client of Herald's SpeakerStatus records.
func (c *Client) SpeakerStatuses() SpeakerStatusClient {
	return SpeakerStatusClient{herald: c.herald}
}

// SpeakerStatusClient creates, patches and lists SpeakerStatus records
// (cluster-scoped), with the signatures of the generated typed client's
// methods, which it replaces: that client is built on client-go's gentype,
// which links client-go's fake-client machinery and the managed fields'
// OpenAPI schemas into the speaker.
type SpeakerStatusClient struct {
	herald rest.Interface
}

// Create creates obj.
func (c SpeakerStatusClient) Create(ctx context.Context, obj *v1alpha1.SpeakerStatus, opts metav1.CreateOptions) (*v1alpha1.SpeakerStatus, error) {
	out := &v1alpha1.SpeakerStatus{}
	err := c.herald.Post().Resource("speakerstatuses").VersionedParams(&opts, metav1.ParameterCodec).
		Body(obj).Do(ctx).Into(out)
	return out, err
}

// Patch applies a patch of type pt to the record name, or to its
// subresources (such as "status").
func (c SpeakerStatusClient) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*v1alpha1.SpeakerStatus, error) {
	out := &v1alpha1.SpeakerStatus{}
	err := c.herald.Patch(pt).Resource("speakerstatuses").Name(name).SubResource(subresources...).
		VersionedParams(&opts, metav1.ParameterCodec).Body(data).Do(ctx).Into(out)
	return out, err
}

// List lists the records.
func (c SpeakerStatusClient) List(ctx context.Context, opts metav1.ListOptions) (*v1alpha1.SpeakerStatusList, error) {
	out := &v1alpha1.SpeakerStatusList{}
	err := c.herald.Get().Resource("speakerstatuses").VersionedParams(&opts, metav1.ParameterCodec).
		Do(ctx).Into(out)
	return out, err
}
