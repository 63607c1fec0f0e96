package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Binaries are the programs the image holds, each at /<name>: the manifests in
// deploy/ pick one with `command:`.
var Binaries = []string{"herald-controller", "herald-speaker", "herald-cloud-controller-manager"}

// The image's user: "nonroot" (65532, as in distroless images), which the controller's and the
// cloud-controller-manager's Pods run as (runAsUser/runAsGroup 65532). The
// speaker's Pod sets runAsUser 0 with only NET_RAW.
const (
	NonrootUID = 65532
	User       = "65532:65532"
	// Entrypoint is the image's default program; every manifest names its own.
	Entrypoint = "/herald-controller"
)

// etcFiles are the base layer: the users and groups the Pods run as, so that
// tools (and Go's os/user) name them. Nothing else: the binaries are static, and
// they reach only the apiserver, whose CA the service-account volume carries, so
// the image needs no CA bundle.
var etcFiles = map[string]string{
	"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
	"etc/group":  "root:x:0:\nnonroot:x:65532:\n",
}

// file is one regular file of a layer.
type file struct {
	name string // without a leading slash
	mode int64
	data []byte
}

// layerTar returns a tar of files, byte for byte the same for the same files: sorted
// by name, every time stamp at created, owned by root, in the PAX format with no
// access or change times; the directories each file needs come first.
func layerTar(files []file, created time.Time) ([]byte, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		var parents []string
		for d := path.Dir(f.name); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		slices.Reverse(parents)
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: created, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: created, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func layer(files []file, created time.Time) (v1.Layer, error) {
	b, err := layerTar(files, created)
	if err != nil {
		return nil, fmt.Errorf("images: layer: %w", err)
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// platformImage assembles one platform's image from the built binaries (name to
// contents): a base layer of etcFiles, then a layer of the binaries, an OCI
// manifest and config with User and Entrypoint, every time stamp at created. The same
// inputs give the same digest.
func platformImage(platform v1.Platform, binaries map[string][]byte, created time.Time, version string) (v1.Image, error) {
	var base []file
	for name, data := range etcFiles {
		base = append(base, file{name: name, mode: 0o644, data: []byte(data)})
	}
	var bins []file
	for _, name := range Binaries {
		data, ok := binaries[name]
		if !ok {
			return nil, fmt.Errorf("images: %s for %s/%s was not built", name, platform.OS, platform.Architecture)
		}
		bins = append(bins, file{name: name, mode: 0o755, data: data})
	}
	baseLayer, err := layer(base, created)
	if err != nil {
		return nil, err
	}
	binLayer, err := layer(bins, created)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: baseLayer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "herald images: /etc/passwd, /etc/group"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "herald images: " + strings.Join(Binaries, " ")}},
	)
	if err != nil {
		return nil, fmt.Errorf("images: append layers: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("images: config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = platform.OS, platform.Architecture, platform.Variant
	cfg.Created = v1.Time{Time: created}
	cfg.Config.User = User
	cfg.Config.Entrypoint = []string{Entrypoint}
	cfg.Config.WorkingDir = "/"
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "herald",
		"org.opencontainers.image.description": "LoadBalancer Services for bare-metal Kubernetes: controller, speaker and cloud-controller-manager",
		"org.opencontainers.image.source":      "https://github.com/herald-dev/herald",
		"org.opencontainers.image.version":     version,
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("images: set the config: %w", err)
	}
	return img, nil
}

// index joins the platforms' images into one OCI image index, in the order given.
func index(images []v1.Image) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, img := range images {
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("images: config: %w", err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}},
		})
	}
	return idx, nil
}
