package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/herald-dev/herald/e2e/controlplane"
)

var epoch = time.Unix(1700000000, 0).UTC()

func fakeBinaries(content string) map[string][]byte {
	bins := map[string][]byte{}
	for _, b := range Binaries {
		bins[b] = []byte(b + content)
	}
	return bins
}

// TestPlatformImageIsReproducible assembles the same inputs twice: the digests must be
// equal, and change with the binaries, the platform and the time stamp.
func TestPlatformImageIsReproducible(t *testing.T) {
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	digest := func(p v1.Platform, bins map[string][]byte, created time.Time) v1.Hash {
		t.Helper()
		img, err := platformImage(p, bins, created, "v0.0.0")
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := digest(amd64, fakeBinaries("1"), epoch)
	if again := digest(amd64, fakeBinaries("1"), epoch); again != first {
		t.Errorf("the same inputs gave %s and %s", first, again)
	}
	for name, d := range map[string]v1.Hash{
		"other binaries": digest(amd64, fakeBinaries("2"), epoch),
		"other platform": digest(v1.Platform{OS: "linux", Architecture: "arm64"}, fakeBinaries("1"), epoch),
		"other time":     digest(amd64, fakeBinaries("1"), epoch.Add(time.Second)),
	} {
		if d == first {
			t.Errorf("%s gave the same digest %s", name, d)
		}
	}
	if _, err := platformImage(amd64, map[string][]byte{"herald-speaker": nil}, epoch, "v0"); err == nil {
		t.Error("an image without herald-controller was assembled")
	}
}

// TestBuildIsReproducible builds the image from source twice for this machine's
// platform, into two layouts: the index digests must be equal.
func TestBuildIsReproducible(t *testing.T) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	build := func() v1.Hash {
		t.Helper()
		cfg := Config{Root: root, Out: filepath.Join(t.TempDir(), "herald"), Version: "v0.0.0-test", Created: epoch,
			Platforms: []v1.Platform{{OS: "linux", Architecture: goruntime.GOARCH}}}
		d, err := Build(cfg, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if a, b := build(), build(); a != b {
		t.Errorf("two builds of the same source gave %s and %s", a, b)
	}
}

// TestImageMatchesManifests checks the image against the rendered manifests:
// every container names the one image of the kustomization's images: entry, its
// command is an executable file of the image, and the controller's Pod runs as the
// image's user.
func TestImageMatchesManifests(t *testing.T) {
	img, err := platformImage(v1.Platform{OS: "linux", Architecture: "amd64"}, fakeBinaries("x"), epoch, "v0")
	if err != nil {
		t.Fatal(err)
	}
	files := imageFiles(t, img)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != User || strings.Join(cfg.Config.Entrypoint, " ") != Entrypoint {
		t.Errorf("config: user %q entrypoint %q, want %q and %q", cfg.Config.User, cfg.Config.Entrypoint, User, Entrypoint)
	}
	if !strings.Contains(files["etc/passwd"].body, ":65532:65532:") {
		t.Errorf("/etc/passwd has no user 65532: %q", files["etc/passwd"].body)
	}

	defaults, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	wantImage := "ghcr.io/herald-dev/herald:" + defaults.Version
	// The overlay holds deploy/default and deploy/cloud-controller-manager.
	workloads := renderWorkloads(t, filepath.Join(defaults.Root, "deploy", "overlays", "cloud-controller-manager"))
	if len(workloads) != 3 {
		t.Fatalf("the cloud-controller-manager overlay rendered %d Deployments and DaemonSets, want the controller, the speaker and the cloud-controller-manager", len(workloads))
	}
	for name, spec := range workloads {
		for _, c := range spec.Containers {
			if c.Image != wantImage {
				t.Errorf("%s container %s: image %q, want %q (make images tags %s; deploy/components/image names it)", name, c.Name, c.Image, wantImage, defaults.Version)
			}
			if len(c.Command) == 0 {
				t.Errorf("%s container %s names no command", name, c.Name)
				continue
			}
			f, ok := files[strings.TrimPrefix(c.Command[0], "/")]
			if !ok || f.mode&0o111 == 0 {
				t.Errorf("%s container %s runs %s, which the image has not as an executable file", name, c.Name, c.Command[0])
			}
		}
		if name == "herald-controller" {
			sc := spec.SecurityContext
			if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != NonrootUID || sc.RunAsGroup == nil || *sc.RunAsGroup != NonrootUID {
				t.Errorf("the controller's Pod does not run as %s, the image's user", User)
			}
		}
	}
}

type imageFile struct {
	mode int64
	body string
}

// imageFiles returns the regular files of img's layers by path.
func imageFiles(t *testing.T, img v1.Image) map[string]imageFile {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]imageFile{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(epoch) {
			t.Errorf("%s: time stamp %v, want %v", hdr.Name, hdr.ModTime, epoch)
		}
		if hdr.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[hdr.Name] = imageFile{mode: hdr.Mode, body: string(b)}
		}
	}
}

// renderWorkloads renders dir with the kubectl the tests build and returns the pod
// templates of its Deployments and DaemonSets by name.
func renderWorkloads(t *testing.T, dir string) map[string]corev1.PodSpec {
	t.Helper()
	bins := controlplane.RequireBinaries(t, "")
	var stderr bytes.Buffer
	cmd := exec.Command(bins.Kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, &stderr)
	}
	specs := map[string]corev1.PodSpec{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return specs
		} else if err != nil {
			t.Fatal(err)
		}
		switch u.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
				t.Fatal(err)
			}
			specs[d.Name] = d.Spec.Template.Spec
		case "DaemonSet":
			var d appsv1.DaemonSet
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
				t.Fatal(err)
			}
			specs[d.Name] = d.Spec.Template.Spec
		}
	}
}

// TestPushCopiesTheLayout writes a layout as make images does, pushes it as make push
// does to a registry in the test process, and reads the index back by its tag.
func TestPushCopiesTheLayout(t *testing.T) {
	img, err := platformImage(v1.Platform{OS: "linux", Architecture: "arm64"}, fakeBinaries("z"), epoch, "v1")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := index([]v1.Image{img})
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Platform == nil || m.Manifests[0].Platform.Architecture != "arm64" {
		t.Errorf("index manifests: %+v, want one linux/arm64 image", m.Manifests)
	}
	dir := filepath.Join(t.TempDir(), "herald")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/team/herald:v1"
	if err := push(Config{Out: dir, Push: ref}); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("the registry holds %s under %s, want %s", d, ref, want)
	}
}
