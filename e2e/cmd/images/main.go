// Command images builds Herald's container image from source without Docker (make
// images) and pushes it (make push).
//
//	images [-out DIR] [-platforms linux/amd64,linux/arm64] [-version v0.1.0]
//	images -push REGISTRY/herald:TAG [-out DIR]
//
// The image holds the three binaries, /herald-controller, /herald-speaker and
// /herald-cloud-controller-manager, built static (CGO_ENABLED=0, -trimpath, no build
// id) for each platform, onto a base of nothing but /etc/passwd and /etc/group (built
// from scratch: no base image is pulled). It runs as 65532:65532 ("nonroot"), the
// controller's user; the manifests in deploy/ pick the binary with `command:`.
//
// Every time stamp is SOURCE_DATE_EPOCH (default: the time of the checked-out commit),
// so the same source gives the same digest on any machine. The result is an OCI image
// layout in DIR (default _output/images/herald), one multi-platform index tagged with
// the version; -push copies that index to a registry, with the credentials of
// ~/.docker/config.json when there are any.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/herald-dev/herald/e2e/controlplane"
)

// Config is what the command does, from its flags.
type Config struct {
	// Root is the repository's root, whose cmd/ is built.
	Root string
	// Out is the OCI image layout written, or read by Push.
	Out string
	// Platforms are os/arch pairs.
	Platforms []v1.Platform
	// Version tags the image in the layout and labels it.
	Version string
	// Created is every time stamp in the image.
	Created time.Time
	// Push, when set, is the reference the layout's image is pushed to; nothing is
	// built.
	Push string
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err == nil {
		if cfg.Push != "" {
			err = push(cfg)
		} else {
			_, err = Build(cfg, os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (Config, error) {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	root := fs.String("root", "", "the repository's root (default: found from the working directory)")
	out := fs.String("out", "", "the OCI image layout to write (default ROOT/_output/images/herald)")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "os/arch pairs to build, comma-separated")
	version := fs.String("version", "v0.1.0", "the image's tag in the layout and its version label")
	pushRef := fs.String("push", "", "push the layout's image to this reference (REGISTRY/herald:TAG) instead of building")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	cfg := Config{Version: *version, Push: *pushRef}
	var err error
	if *root == "" {
		*root, err = controlplane.RepoRoot()
	}
	if err != nil {
		return Config{}, err
	}
	if cfg.Root, err = filepath.Abs(*root); err != nil {
		return Config{}, err
	}
	cfg.Out = *out
	if cfg.Out == "" {
		cfg.Out = filepath.Join(cfg.Root, "_output", "images", "herald")
	}
	for _, p := range strings.Split(*platforms, ",") {
		plat, err := v1.ParsePlatform(strings.TrimSpace(p))
		if err != nil || plat.OS == "" || plat.Architecture == "" {
			return Config{}, fmt.Errorf("platform %q: want os/arch, such as linux/arm64", p)
		}
		cfg.Platforms = append(cfg.Platforms, *plat)
	}
	if cfg.Created, err = sourceDate(cfg.Root); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// sourceDate returns SOURCE_DATE_EPOCH, or else the committer time of the repository's
// HEAD, or else the Unix epoch.
func sourceDate(root string) (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%ct").Output()
		if err != nil {
			return time.Unix(0, 0).UTC(), nil
		}
		s = strings.TrimSpace(string(out))
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// Build builds the binaries for every platform, assembles the image index, writes it
// as an OCI image layout in cfg.Out (replacing what was there) and returns its
// digest. Progress goes to log.
func Build(cfg Config, log *os.File) (v1.Hash, error) {
	var images []v1.Image
	for _, p := range cfg.Platforms {
		start := time.Now()
		fmt.Fprintf(log, "images: building %s for %s/%s\n", strings.Join(Binaries, ", "), p.OS, p.Architecture)
		bins, err := buildBinaries(cfg.Root, p)
		if err != nil {
			return v1.Hash{}, err
		}
		img, err := platformImage(p, bins, cfg.Created, cfg.Version)
		if err != nil {
			return v1.Hash{}, err
		}
		d, err := img.Digest()
		if err != nil {
			return v1.Hash{}, err
		}
		fmt.Fprintf(log, "images:   %s/%s: %s (%s)\n", p.OS, p.Architecture, d, time.Since(start).Round(time.Second))
		images = append(images, img)
	}
	idx, err := index(images)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := os.RemoveAll(cfg.Out); err != nil {
		return v1.Hash{}, fmt.Errorf("remove the old layout: %w", err)
	}
	lp, err := layout.Write(cfg.Out, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("write the layout %s: %w", cfg.Out, err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": cfg.Version})); err != nil {
		return v1.Hash{}, fmt.Errorf("write the image to %s: %w", cfg.Out, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	fmt.Fprintf(log, "images: herald:%s %s in %s\n", cfg.Version, d, cfg.Out)
	return d, nil
}

// buildBinaries builds Binaries for p, statically and reproducibly, and returns their
// contents by name.
func buildBinaries(root string, p v1.Platform) (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "herald-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", dir + "/"}
	for _, b := range Binaries {
		args = append(args, "./cmd/"+b)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOWORK=off", "GOFLAGS=-mod=readonly")
	if p.Variant != "" && p.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build for %s/%s: %w\n%s", p.OS, p.Architecture, err, out)
	}
	bins := map[string][]byte{}
	for _, b := range Binaries {
		data, err := os.ReadFile(filepath.Join(dir, b))
		if err != nil {
			return nil, err
		}
		bins[b] = data
	}
	return bins, nil
}

// push copies the layout's image index to cfg.Push.
func push(cfg Config) error {
	ref, err := name.ParseReference(cfg.Push)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	lp, err := layout.FromPath(cfg.Out)
	if err != nil {
		return fmt.Errorf("push: read %s (run make images first): %w", cfg.Out, err)
	}
	outer, err := lp.ImageIndex()
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	m, err := outer.IndexManifest()
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if len(m.Manifests) != 1 {
		return errors.New("push: the layout holds no image or more than one: run make images")
	}
	idx, err := outer.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	fmt.Printf("images: pushed %s@%s\n", ref, m.Manifests[0].Digest)
	return nil
}
