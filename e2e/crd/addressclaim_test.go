package crd

import (
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// holder is one valid AddressClaim holder, in YAML.
const holder = `{namespace: shop, name: web, uid: 7b0c5b52-0d3e-4c53-9a5e-3f1d3c1f0a11, as: LoadBalancer}`

// claimSpec is the YAML spec of an AddressClaim of address with one holder.
func claimSpec(address, family, pool string) string {
	return fmt.Sprintf(`{address: %q, family: %s, pool: %q, holders: [%s], holderCount: 1}`, address, family, pool, holder)
}

// testAddressClaims checks the AddressClaim schema: a claim is named by its
// address (config.ClaimName), in canonical form, with a holder count that
// matches, and its address, family and pool never change.
func testAddressClaims(t *testing.T, client dynamic.Interface) {
	claims := client.Resource(resources["AddressClaim"])
	t.Run("accepted", func(t *testing.T) {
		for _, tt := range []struct{ name, spec string }{
			{"198.51.100.7", claimSpec("198.51.100.7", "IPv4", "lan")},
			{"2001-db8--7", claimSpec("2001:db8::7", "IPv6", "lan")},
			{"2001-db8--0", claimSpec("2001:db8::", "IPv6", "lan")},
			{"0--1", claimSpec("::1", "IPv6", "lan")},
			{"203.0.113.9", `{address: 203.0.113.9, family: IPv4, holderCount: 1, holders: [` + holder + `]}`}, // no pool: imported from a status
			{"198.51.100.8", `{address: 198.51.100.8, family: IPv4, pool: lan, holderCount: 2, holders: [` + holder +
				`, {namespace: shop, name: api, uid: 0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f, as: LoadBalancer, sharingKey: k, ports: [{protocol: TCP, port: 443}]}]}`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := claims.Create(t.Context(), object(t, "AddressClaim", tt.name, tt.spec), metav1.CreateOptions{}); err != nil {
					t.Fatalf("create AddressClaim %s %s: %v", tt.name, tt.spec, err)
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			desc, name, spec, wantMsg string
		}{
			{"named by another address", "198.51.100.10", claimSpec("198.51.100.11", "IPv4", "lan"),
				"an AddressClaim is named by its address, with colons written as dashes"},
			{"IPv6 with colons kept as dots", "2001.db8..7", claimSpec("2001:db8::7", "IPv6", "lan"),
				"an AddressClaim is named by its address"},
			{"IPv6 without the 0 of a trailing ::", "2001-db8--", claimSpec("2001:db8::", "IPv6", "lan"),
				""}, // a name may not end in a dash: the apiserver's own name check refuses it
			{"IPv6 without the 0 of a leading ::", "--1", claimSpec("::1", "IPv6", "lan"), ""},
			{"non-canonical IPv6 address", "2001-db8-0--7", claimSpec("2001:db8:0::7", "IPv6", "lan"),
				"address must be an IP address in canonical form"},
			{"IPv4 address with leading zeros", "198.51.100.070", claimSpec("198.51.100.070", "IPv4", "lan"),
				"address must be an IP address in canonical form"},
			{"IPv4-mapped IPv6 address", "0--ffff-198.51.100.7", claimSpec("::ffff:198.51.100.7", "IPv6", "lan"),
				"address must be an IP address in canonical form"},
			{"family of the other address", "198.51.100.12", claimSpec("198.51.100.12", "IPv6", "lan"),
				"family must be the address's family"},
			{"holderCount not the number of holders", "198.51.100.13",
				`{address: 198.51.100.13, family: IPv4, pool: lan, holderCount: 2, holders: [` + holder + `]}`,
				"holderCount must equal the number of holders"},
			{"no holder", "198.51.100.14", `{address: 198.51.100.14, family: IPv4, pool: lan, holderCount: 0, holders: []}`,
				"spec.holders"},
		} {
			t.Run(tt.desc, func(t *testing.T) {
				_, err := claims.Create(t.Context(), object(t, "AddressClaim", tt.name, tt.spec), metav1.CreateOptions{})
				if err == nil {
					t.Fatalf("the apiserver accepted AddressClaim %s %s; want it refused with %q", tt.name, tt.spec, tt.wantMsg)
				}
				if !apierrors.IsInvalid(err) {
					t.Fatalf("create: got %v (reason %s), want Invalid", err, apierrors.ReasonForError(err))
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("the apiserver's message\n  %s\ndoes not contain\n  %s", err, tt.wantMsg)
				}
			})
		}
	})

	t.Run("immutable", func(t *testing.T) {
		for i, tt := range []struct {
			desc    string
			edit    func(spec map[string]any)
			wantMsg string
		}{
			{"pool", func(s map[string]any) { s["pool"] = "other" }, "pool is immutable"},
			{"pool emptied", func(s map[string]any) { s["pool"] = "" }, "pool is immutable"},
			{"address", func(s map[string]any) { s["address"] = "198.51.100.31" }, "address is immutable"},
			{"family", func(s map[string]any) { s["family"] = "IPv6" }, "family is immutable"},
		} {
			t.Run(tt.desc, func(t *testing.T) {
				name := fmt.Sprintf("198.51.100.%d", 40+i)
				created, err := claims.Create(t.Context(), object(t, "AddressClaim", name, claimSpec(name, "IPv4", "lan")), metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				edited := created.DeepCopy()
				spec, _, _ := unstructured.NestedMap(edited.Object, "spec")
				tt.edit(spec)
				if err := unstructured.SetNestedMap(edited.Object, spec, "spec"); err != nil {
					t.Fatal(err)
				}
				_, err = claims.Update(t.Context(), edited, metav1.UpdateOptions{})
				if err == nil {
					t.Fatalf("the apiserver accepted the edit of %s; want it refused with %q", tt.desc, tt.wantMsg)
				}
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("the apiserver's answer\n  %v\ndoes not contain\n  %s", err, tt.wantMsg)
				}
			})
		}
		t.Run("holders may change", func(t *testing.T) {
			name := "198.51.100.32"
			created, err := claims.Create(t.Context(), object(t, "AddressClaim", name, claimSpec(name, "IPv4", "lan")), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			edited := created.DeepCopy()
			holders, _, _ := unstructured.NestedSlice(edited.Object, "spec", "holders")
			h := holders[0].(map[string]any)
			h["uid"], h["name"] = "d2c1b0a9-8f7e-4d6c-9b5a-4f3e2d1c0b9a", "web-2"
			if err := unstructured.SetNestedSlice(edited.Object, holders, "spec", "holders"); err != nil {
				t.Fatal(err)
			}
			if _, err := claims.Update(t.Context(), edited, metav1.UpdateOptions{}); err != nil {
				t.Errorf("update holders: %v", err)
			}
		})
	})
}
