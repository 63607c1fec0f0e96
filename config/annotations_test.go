package config

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseServiceAnnotations(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	tests := []struct {
		name    string
		in      map[string]string
		want    ServiceAnnotations
		wantErr string
	}{
		{name: "none", in: nil},
		{name: "unrelated annotations", in: map[string]string{"example.com/x": "y"}},
		{name: "pool", in: map[string]string{AnnotationPool: "blue"}, want: ServiceAnnotations{Pool: "blue"}},
		{name: "one address", in: map[string]string{AnnotationAddresses: "198.51.100.10"}, want: ServiceAnnotations{Addresses: addrs("198.51.100.10")}},
		{name: "dual stack with spaces", in: map[string]string{AnnotationAddresses: "2001:db8::10 , 198.51.100.10"}, want: ServiceAnnotations{Addresses: addrs("2001:db8::10", "198.51.100.10")}},
		{name: "sharing key", in: map[string]string{AnnotationSharingKey: "web-1.a_b"}, want: ServiceAnnotations{SharingKey: "web-1.a_b"}},
		{name: "cross-namespace sharing", in: map[string]string{AnnotationSharingCrossNamespace: " tenant-b,tenant-a ,tenant-b"},
			want: ServiceAnnotations{SharingNamespaces: []string{"tenant-a", "tenant-b"}}},
		{name: "cross-namespace sharing with every namespace", in: map[string]string{AnnotationSharingCrossNamespace: "*"},
			want: ServiceAnnotations{SharingNamespaces: []string{"*"}}},
		{name: "external ip true", in: map[string]string{AnnotationAllocateExternalIP: "true"}, want: ServiceAnnotations{ExternalIP: ExternalIPRequest{Requested: true}}},
		{name: "external ip false", in: map[string]string{AnnotationAllocateExternalIP: "false"}},
		{name: "external ip from pool", in: map[string]string{AnnotationAllocateExternalIP: "edge"}, want: ServiceAnnotations{ExternalIP: ExternalIPRequest{Requested: true, Pool: "edge"}}},
		{name: "bad pool name", in: map[string]string{AnnotationPool: "Blue_Pool"},
			wantErr: `config: invalid annotation herald.dev/pool="Blue_Pool": not a valid pool name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		{name: "empty pool", in: map[string]string{AnnotationPool: " "}, wantErr: `config: invalid annotation herald.dev/pool="": the pool name is empty`},
		{name: "unparsable address", in: map[string]string{AnnotationAddresses: "198.51.100.300"},
			wantErr: `config: invalid annotation herald.dev/addresses="198.51.100.300": config: invalid address: "198.51.100.300" is not an IP address`},
		{name: "two of one family", in: map[string]string{AnnotationAddresses: "198.51.100.1,198.51.100.2"},
			wantErr: `config: invalid annotation herald.dev/addresses="198.51.100.1,198.51.100.2": config: invalid address: 198.51.100.1 and 198.51.100.2 are of the same family: give at most one IPv4 and one IPv6 address`},
		{name: "three addresses", in: map[string]string{AnnotationAddresses: "198.51.100.1,2001:db8::1,203.0.113.1"},
			wantErr: `config: invalid annotation herald.dev/addresses="198.51.100.1,2001:db8::1,203.0.113.1": config: invalid address: at most 2 addresses (one per family) are allowed`},
		{name: "trailing comma", in: map[string]string{AnnotationAddresses: "198.51.100.1,"},
			wantErr: `config: invalid annotation herald.dev/addresses="198.51.100.1,": config: invalid address: empty entry in the comma-separated list`},
		{name: "unspecified", in: map[string]string{AnnotationAddresses: "::"},
			wantErr: `config: invalid annotation herald.dev/addresses="::": config: invalid address: :: is the unspecified address`},
		{name: "mapped", in: map[string]string{AnnotationAddresses: "::ffff:198.51.100.1"},
			wantErr: `config: invalid annotation herald.dev/addresses="::ffff:198.51.100.1": config: invalid address: "::ffff:198.51.100.1" is an IPv4-mapped IPv6 address: write it as IPv4`},
		{name: "bad sharing key", in: map[string]string{AnnotationSharingKey: "-x"},
			wantErr: `config: invalid annotation herald.dev/sharing-key="-x": a sharing key is 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`},
		{name: "star among namespaces", in: map[string]string{AnnotationSharingCrossNamespace: "a,*"},
			wantErr: `config: invalid annotation herald.dev/sharing-cross-namespace="a,*": "*" (every namespace) must be the only entry`},
		{name: "bad namespace", in: map[string]string{AnnotationSharingCrossNamespace: "Tenant_A"},
			wantErr: `config: invalid annotation herald.dev/sharing-cross-namespace="Tenant_A": "Tenant_A" is not a namespace name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
		{name: "empty namespace list", in: map[string]string{AnnotationSharingCrossNamespace: ""},
			wantErr: `config: invalid annotation herald.dev/sharing-cross-namespace="": empty entry in the comma-separated list of namespaces`},
		{name: "bad external ip value", in: map[string]string{AnnotationAllocateExternalIP: "yes please"},
			wantErr: `config: invalid annotation herald.dev/allocate-external-ip="yes please": want "true", "false" or a pool name: not a valid pool name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		{name: "two wrong, reported in a fixed order", in: map[string]string{AnnotationSharingKey: "", AnnotationAddresses: "x"},
			wantErr: "config: invalid annotation herald.dev/addresses=\"x\": config: invalid address: \"x\" is not an IP address\n" +
				"config: invalid annotation herald.dev/sharing-key=\"\": a sharing key is 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseServiceAnnotations(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v\nwant %s", err, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidAnnotation) {
					t.Errorf("error does not wrap ErrInvalidAnnotation")
				}
				if diff := cmp.Diff(ServiceAnnotations{}, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
					t.Errorf("result with an error is not zero (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseServiceAnnotations checks that the parser never panics and that
// what it accepts respects its contract: at most one address per family,
// valid names, errors that wrap ErrInvalidAnnotation.
func FuzzParseServiceAnnotations(f *testing.F) {
	f.Add("blue", "198.51.100.10,2001:db8::10", "web", "true")
	f.Add("", "198.51.100.1,198.51.100.2", "-", "edge")
	f.Add("Blue", ",", "a", "false")
	f.Fuzz(func(t *testing.T, pool, addresses, key, ext string) {
		in := map[string]string{AnnotationPool: pool, AnnotationAddresses: addresses, AnnotationSharingKey: key, AnnotationAllocateExternalIP: ext}
		got, err := ParseServiceAnnotations(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidAnnotation) {
				t.Fatalf("error %v does not wrap ErrInvalidAnnotation", err)
			}
			return
		}
		if len(got.Addresses) == 0 || len(got.Addresses) > 2 {
			t.Fatalf("accepted %q as %d addresses", addresses, len(got.Addresses))
		}
		if len(got.Addresses) == 2 && got.Addresses[0].Is4() == got.Addresses[1].Is4() {
			t.Fatalf("accepted two addresses of one family: %v", got.Addresses)
		}
		if got.Pool != strings.TrimSpace(pool) || checkPoolName(got.Pool) != nil {
			t.Fatalf("accepted pool %q as %q", pool, got.Pool)
		}
		if !sharingKeyRE.MatchString(got.SharingKey) {
			t.Fatalf("accepted sharing key %q", got.SharingKey)
		}
	})
}

// FuzzSharingNamespaces checks that what the cross-namespace list accepts is
// sorted, unique, bounded, and either "*" alone or namespace names.
func FuzzSharingNamespaces(f *testing.F) {
	f.Add("tenant-b,tenant-a")
	f.Add("*")
	f.Add("a,,b")
	f.Fuzz(func(t *testing.T, v string) {
		got, err := ParseServiceAnnotations(map[string]string{AnnotationSharingCrossNamespace: v})
		if err != nil {
			if !errors.Is(err, ErrInvalidAnnotation) {
				t.Fatalf("error %v does not wrap ErrInvalidAnnotation", err)
			}
			return
		}
		nss := got.SharingNamespaces
		if len(nss) == 0 || len(nss) > maxSharingNamespaces || !slices.IsSorted(nss) || len(slices.Compact(slices.Clone(nss))) != len(nss) {
			t.Fatalf("accepted %q as %q", v, nss)
		}
		if slices.Contains(nss, AllNamespaces) && len(nss) != 1 {
			t.Fatalf("accepted %q with \"*\" among others: %q", v, nss)
		}
	})
}
