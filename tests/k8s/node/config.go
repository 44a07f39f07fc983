package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Duration is a time.Duration written as "500ms", "2s" in the YAML files.
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration: want a string such as \"500ms\": %w", err)
		}
		d.Duration = time.Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// NodeConfig is one Node the agent registers.
type NodeConfig struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Taints []v1.Taint        `json:"taints,omitempty"`
}

// StorageConfig is the local-directory provisioner's.
type StorageConfig struct {
	// StorageClass is the default StorageClass the agent creates and serves.
	StorageClass string `json:"storageClass"`
	// BindDelay is how long a claim stays Pending before its volume is made.
	BindDelay Duration `json:"bindDelay"`
}

// Config is nodes.yaml.
type Config struct {
	Nodes []NodeConfig `json:"nodes"`
	// Images is the image map's path, relative to this file.
	Images string `json:"images,omitempty"`
	// ImagePullDelay is the pull delay of images whose rule has none.
	ImagePullDelay Duration `json:"imagePullDelay"`
	// FaultDelay is how long after a container starts an injected OOM kill
	// or eviction happens.
	FaultDelay Duration      `json:"faultDelay"`
	Storage    StorageConfig `json:"storage"`
}

// LoadConfig reads nodes.yaml.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.Nodes) == 0 {
		return nil, fmt.Errorf("%s: no nodes", path)
	}
	seen := map[string]bool{}
	for _, n := range c.Nodes {
		if n.Name == "" || seen[n.Name] {
			return nil, fmt.Errorf("%s: node names must be set and distinct (%q)", path, n.Name)
		}
		seen[n.Name] = true
	}
	if c.Storage.StorageClass == "" {
		c.Storage.StorageClass = "local-dirs"
	}
	if c.FaultDelay.Duration == 0 {
		c.FaultDelay.Duration = 500 * time.Millisecond
	}
	if c.Images != "" && !filepath.IsAbs(c.Images) {
		c.Images = filepath.Join(filepath.Dir(path), c.Images)
	}
	return &c, nil
}

// ImageRule maps image references to a root filesystem.
type ImageRule struct {
	// Image matches one reference exactly (in any of its spellings:
	// "busybox", "docker.io/library/busybox:latest"); a '*' in it matches
	// any run of characters ("concourse/*-resource").
	Image string `json:"image,omitempty"`
	// Prefix matches every reference that starts with it.
	Prefix string `json:"prefix,omitempty"`
	// Host runs the container on the host's root filesystem, behind an
	// overlay so that nothing it writes reaches the host.
	Host bool `json:"host,omitempty"`
	// Rootfs is a directory holding a root filesystem (~ is expanded).
	Rootfs string `json:"rootfs,omitempty"`
	// Command is run when the pod gives none (the image's entrypoint).
	// ${NAME} in it is the agent's environment variable NAME (atc's image
	// runs the atc binary the tests built, which k8s-up.sh is told).
	Command []string `json:"command,omitempty"`
	// PullDelay is how long pulling takes (default: imagePullDelay).
	PullDelay *Duration `json:"pullDelay,omitempty"`
	// Fault is injected into every container of the image (image-pull, oom,
	// exec-fail), or into the pod of such a container (evict).
	Fault string `json:"fault,omitempty"`
}

// ImageMap is images.yaml.
type ImageMap struct {
	Images []ImageRule `json:"images"`
	// DefaultPullDelay applies to rules without a pullDelay.
	DefaultPullDelay time.Duration `json:"-"`
}

// LoadImages reads images.yaml.
func LoadImages(path string) (*ImageMap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m ImageMap
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range m.Images {
		r := &m.Images[i]
		if (r.Image == "") == (r.Prefix == "") {
			return nil, fmt.Errorf("%s: rule %d: give exactly one of image and prefix", path, i)
		}
		if r.Fault == "" && r.Host == (r.Rootfs != "") {
			return nil, fmt.Errorf("%s: rule %d (%s%s): give exactly one of host: true and rootfs", path, i, r.Image, r.Prefix)
		}
		if r.Rootfs != "" {
			r.Rootfs = expandHome(r.Rootfs)
			if !filepath.IsAbs(r.Rootfs) {
				r.Rootfs = filepath.Join(filepath.Dir(path), r.Rootfs)
			}
		}
	}
	return &m, nil
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

// refForms is the spellings of one image reference: as written, and
// without the default registry, library/ and :latest.
func refForms(ref string) []string {
	forms := []string{ref}
	add := func(s string) {
		for _, f := range forms {
			if f == s {
				return
			}
		}
		forms = append(forms, s)
	}
	r := ref
	if i := strings.Index(r, "@"); i >= 0 {
		r = r[:i]
		add(r)
	}
	for _, p := range []string{"docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/", "library/"} {
		if strings.HasPrefix(r, p) {
			r = strings.TrimPrefix(r, p)
			add(r)
		}
	}
	if strings.HasSuffix(r, ":latest") {
		add(strings.TrimSuffix(r, ":latest"))
	}
	return forms
}

// imageMatches reports whether pattern (with '*' wildcards) matches s.
func imageMatches(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return true
}

// Lookup finds the first rule matching ref; nil when none does.
func (m *ImageMap) Lookup(ref string) *ImageRule {
	if m == nil {
		return nil
	}
	forms := refForms(ref)
	for i := range m.Images {
		r := &m.Images[i]
		for _, f := range forms {
			if r.Image != "" && (imageMatches(r.Image, f) || imageMatches(r.Image, strings.TrimSuffix(f, ":latest"))) {
				return r
			}
			if r.Prefix != "" && strings.HasPrefix(f, r.Prefix) {
				return r
			}
		}
	}
	return nil
}

func (m *ImageMap) pullDelay(r *ImageRule) time.Duration {
	if r.PullDelay != nil {
		return r.PullDelay.Duration
	}
	return m.DefaultPullDelay
}

// entrypoint is the rule's command with ${NAME} replaced by the agent's
// environment; an unset variable is an error naming it.
func (r *ImageRule) entrypoint() ([]string, error) {
	var missing []string
	out := make([]string, len(r.Command))
	for i, a := range r.Command {
		out[i] = os.Expand(a, func(name string) string {
			v, ok := os.LookupEnv(name)
			if !ok || v == "" {
				missing = append(missing, name)
			}
			return v
		})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("its command needs %s, which the node agent was not started with", strings.Join(missing, ", "))
	}
	return out, nil
}
