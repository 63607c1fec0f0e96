package kubeinput

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// objectMeta is the metadata the compact cached objects keep: what
// client-go's caches read of an object. Its namespace and name key it
// (cache.MetaNamespaceKeyFunc); its resourceVersion tells an informer an
// update (a new version: the handlers are called) from a resync (the same
// version: they are not, without a resync period), so it must be kept.
//
// objectMeta implements metav1.Object, which is what the caches ask of
// an object (meta.Accessor). The other fields are not kept: their getters
// return zero values and their setters do nothing. Nothing mutates cached
// objects, and the speaker reads only the fields its structs keep.
type objectMeta struct {
	Namespace, Name, ResourceVersion string
}

var _ metav1.Object = (*objectMeta)(nil)

func metaOf(m metav1.ObjectMeta) objectMeta {
	return objectMeta{Namespace: m.Namespace, Name: m.Name, ResourceVersion: m.ResourceVersion}
}

func (m *objectMeta) GetNamespace() string               { return m.Namespace }
func (m *objectMeta) SetNamespace(namespace string)      { m.Namespace = namespace }
func (m *objectMeta) GetName() string                    { return m.Name }
func (m *objectMeta) SetName(name string)                { m.Name = name }
func (m *objectMeta) GetResourceVersion() string         { return m.ResourceVersion }
func (m *objectMeta) SetResourceVersion(version string)  { m.ResourceVersion = version }
func (m *objectMeta) GetGenerateName() string            { return "" }
func (m *objectMeta) SetGenerateName(string)             {}
func (m *objectMeta) GetUID() types.UID                  { return "" }
func (m *objectMeta) SetUID(types.UID)                   {}
func (m *objectMeta) GetGeneration() int64               { return 0 }
func (m *objectMeta) SetGeneration(int64)                {}
func (m *objectMeta) GetSelfLink() string                { return "" }
func (m *objectMeta) SetSelfLink(string)                 {}
func (m *objectMeta) GetCreationTimestamp() metav1.Time  { return metav1.Time{} }
func (m *objectMeta) SetCreationTimestamp(metav1.Time)   {}
func (m *objectMeta) GetDeletionTimestamp() *metav1.Time { return nil }
func (m *objectMeta) SetDeletionTimestamp(*metav1.Time)  {}
func (m *objectMeta) GetDeletionGracePeriodSeconds() *int64 {
	return nil
}
func (m *objectMeta) SetDeletionGracePeriodSeconds(*int64)          {}
func (m *objectMeta) GetLabels() map[string]string                  { return nil }
func (m *objectMeta) SetLabels(map[string]string)                   {}
func (m *objectMeta) GetAnnotations() map[string]string             { return nil }
func (m *objectMeta) SetAnnotations(map[string]string)              {}
func (m *objectMeta) GetFinalizers() []string                       { return nil }
func (m *objectMeta) SetFinalizers([]string)                        {}
func (m *objectMeta) GetOwnerReferences() []metav1.OwnerReference   { return nil }
func (m *objectMeta) SetOwnerReferences([]metav1.OwnerReference)    {}
func (m *objectMeta) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }
func (m *objectMeta) SetManagedFields([]metav1.ManagedFieldsEntry)  {}
