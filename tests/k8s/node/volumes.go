package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// prepareVolumes makes each volume's directory on the host: emptyDir in the
// sandbox, secret, configMap and projected (service-account token) written
// into the sandbox, and a persistentVolumeClaim's bound hostPath volume.
func (s *sandbox) prepareVolumes() error {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	vols := map[string]string{}
	for _, v := range s.pod.Spec.Volumes {
		dir := filepath.Join(s.dir, "volumes", v.Name)
		switch {
		case v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return err
			}
			_ = os.Chmod(dir, 0o777)
		case v.Secret != nil:
			sec, err := s.rt.Client.CoreV1().Secrets(s.pod.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				if v.Secret.Optional != nil && *v.Secret.Optional {
					sec = &v1.Secret{}
				} else {
					return fmt.Errorf("volume %q: secret %q: %w", v.Name, v.Secret.SecretName, err)
				}
			}
			if err := writeKeys(dir, sec.Data, v.Secret.Items, mode(v.Secret.DefaultMode, 0o644)); err != nil {
				return err
			}
		case v.ConfigMap != nil:
			cm, err := s.rt.Client.CoreV1().ConfigMaps(s.pod.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				if v.ConfigMap.Optional != nil && *v.ConfigMap.Optional {
					cm = &v1.ConfigMap{}
				} else {
					return fmt.Errorf("volume %q: configmap %q: %w", v.Name, v.ConfigMap.Name, err)
				}
			}
			if err := writeKeys(dir, configMapData(cm), v.ConfigMap.Items, mode(v.ConfigMap.DefaultMode, 0o644)); err != nil {
				return err
			}
		case v.Projected != nil:
			if err := s.writeProjected(ctx, dir, v.Projected); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		case v.PersistentVolumeClaim != nil:
			pvc, err := s.rt.Client.CoreV1().PersistentVolumeClaims(s.pod.Namespace).Get(ctx, v.PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
			if pvc.Status.Phase != v1.ClaimBound || pvc.Spec.VolumeName == "" {
				return fmt.Errorf("volume %q: persistentvolumeclaim %q is not bound", v.Name, pvc.Name)
			}
			pv, err := s.rt.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
			switch {
			case pv.Spec.HostPath != nil:
				dir = pv.Spec.HostPath.Path
			case pv.Spec.Local != nil:
				dir = pv.Spec.Local.Path
			default:
				return fmt.Errorf("volume %q: persistentvolume %q is neither hostPath nor local", v.Name, pv.Name)
			}
		case v.HostPath != nil:
			// Allowed only inside the state dir: a pod must not write the host.
			p := filepath.Clean(v.HostPath.Path)
			if rel, err := filepath.Rel(s.rt.StateDir, p); err != nil || strings.HasPrefix(rel, "..") {
				return fmt.Errorf("volume %q: hostPath %s is outside the node's state dir; this node does not mount host directories", v.Name, p)
			}
			dir = p
		case v.DownwardAPI != nil:
			if err := s.writeDownward(dir, v.DownwardAPI.Items); err != nil {
				return err
			}
		default:
			return fmt.Errorf("volume %q: this node supports emptyDir, secret, configMap, projected, downwardAPI and persistentVolumeClaim volumes", v.Name)
		}
		vols[v.Name] = dir
	}
	s.mu.Lock()
	s.volumes = vols
	s.mu.Unlock()
	return nil
}

func mode(m *int32, def os.FileMode) os.FileMode {
	if m != nil {
		return os.FileMode(*m)
	}
	return def
}

func configMapData(cm *v1.ConfigMap) map[string][]byte {
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return data
}

// writeKeys writes data's keys (or only items, at their paths) into dir.
func writeKeys(dir string, data map[string][]byte, items []v1.KeyToPath, m os.FileMode) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if len(items) == 0 {
		for k, v := range data {
			if err := writeFile(dir, k, v, m); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("key %q not found", it.Key)
		}
		if err := writeFile(dir, it.Path, v, mode(it.Mode, m)); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(dir, name string, data []byte, m os.FileMode) error {
	p := filepath.Join(dir, filepath.Clean("/"+name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, m)
}

func (s *sandbox) writeProjected(ctx context.Context, dir string, pv *v1.ProjectedVolumeSource) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m := mode(pv.DefaultMode, 0o644)
	for _, src := range pv.Sources {
		switch {
		case src.ServiceAccountToken != nil:
			t := src.ServiceAccountToken
			req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				Audiences: nil, ExpirationSeconds: t.ExpirationSeconds,
				BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: s.pod.Name, UID: s.pod.UID},
			}}
			if t.Audience != "" {
				req.Spec.Audiences = []string{t.Audience}
			}
			sa := s.pod.Spec.ServiceAccountName
			if sa == "" {
				sa = "default"
			}
			tr, err := s.rt.Client.CoreV1().ServiceAccounts(s.pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("service account token for %q: %w", sa, err)
			}
			if err := writeFile(dir, t.Path, []byte(tr.Status.Token), m); err != nil {
				return err
			}
		case src.ConfigMap != nil:
			cm, err := s.rt.Client.CoreV1().ConfigMaps(s.pod.Namespace).Get(ctx, src.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				if src.ConfigMap.Optional != nil && *src.ConfigMap.Optional {
					continue
				}
				return fmt.Errorf("configmap %q: %w", src.ConfigMap.Name, err)
			}
			if err := writeKeys(dir, configMapData(cm), src.ConfigMap.Items, m); err != nil {
				return err
			}
		case src.Secret != nil:
			sec, err := s.rt.Client.CoreV1().Secrets(s.pod.Namespace).Get(ctx, src.Secret.Name, metav1.GetOptions{})
			if err != nil {
				if src.Secret.Optional != nil && *src.Secret.Optional {
					continue
				}
				return fmt.Errorf("secret %q: %w", src.Secret.Name, err)
			}
			if err := writeKeys(dir, sec.Data, src.Secret.Items, m); err != nil {
				return err
			}
		case src.DownwardAPI != nil:
			if err := s.writeDownward(dir, src.DownwardAPI.Items); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *sandbox) writeDownward(dir string, items []v1.DownwardAPIVolumeFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, it := range items {
		if it.FieldRef == nil {
			continue
		}
		v, err := s.fieldValue(it.FieldRef.FieldPath)
		if err != nil {
			return err
		}
		if err := writeFile(dir, it.Path, []byte(v), mode(it.Mode, 0o644)); err != nil {
			return err
		}
	}
	return nil
}

func (s *sandbox) fieldValue(path string) (string, error) {
	p := s.pod
	switch path {
	case "metadata.name":
		return p.Name, nil
	case "metadata.namespace":
		return p.Namespace, nil
	case "metadata.uid":
		return string(p.UID), nil
	case "spec.nodeName":
		return p.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, nil
	case "status.podIP", "status.hostIP":
		return "127.0.0.1", nil
	case "metadata.labels", "metadata.annotations":
		m := p.Labels
		if path == "metadata.annotations" {
			m = p.Annotations
		}
		var lines []string
		for k, v := range m {
			lines = append(lines, fmt.Sprintf("%s=%q", k, v))
		}
		return strings.Join(lines, "\n"), nil
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

// mountsFor is c's volume mounts as bind mounts (subPath included).
func (s *sandbox) mountsFor(c *ctr) ([]bindMount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []bindMount
	for _, m := range c.spec.VolumeMounts {
		src, ok := s.volumes[m.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %q: no such volume", m.Name)
		}
		sub := m.SubPath
		if m.SubPathExpr != "" {
			sub = m.SubPathExpr
		}
		if sub != "" {
			clean := filepath.Clean("/" + sub)
			src = filepath.Join(src, clean)
			if _, err := os.Lstat(src); os.IsNotExist(err) {
				if err := os.MkdirAll(src, 0o777); err != nil {
					return nil, err
				}
				_ = os.Chmod(src, 0o777)
			}
			if fi, err := os.Lstat(src); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				return nil, fmt.Errorf("volume mount %q: subPath %q is a symbolic link", m.Name, sub)
			}
		}
		out = append(out, bindMount{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	return out, nil
}
