package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ProvisionerName is the StorageClass provisioner the agent serves.
const ProvisionerName = "atc.test/local-dirs"

const provisionedByAnnotation = "pv.kubernetes.io/provisioned-by"

// Provisioner binds claims of its StorageClass to new hostPath volumes,
// directories under the state dir, which every node of the agent sees (they
// are all this host): ReadWriteMany works across nodes.
type Provisioner struct {
	Client       kubernetes.Interface
	StorageClass string
	Dir          string        // where the volumes' directories are made
	StateDir     string        // deletes stay inside it
	BindDelay    time.Duration // how long a claim stays Pending first
}

// ensureStorageClass creates the default StorageClass if it is missing.
func (p *Provisioner) ensureStorageClass(ctx context.Context) error {
	del := v1.PersistentVolumeReclaimDelete
	mode := storagev1.VolumeBindingImmediate
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        p.StorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       ProvisionerName,
		ReclaimPolicy:     &del,
		VolumeBindingMode: &mode,
	}
	_, err := p.Client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// Run provisions and deletes volumes until ctx ends.
func (p *Provisioner) Run(ctx context.Context) {
	for {
		if err := p.ensureStorageClass(ctx); err == nil {
			break
		} else {
			fmt.Fprintf(os.Stderr, "process-node: storage class %s: %v\n", p.StorageClass, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		p.provisionPending(ctx)
		p.deleteReleased(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Provisioner) wants(pvc *v1.PersistentVolumeClaim) bool {
	if pvc.Status.Phase != v1.ClaimPending || pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil {
		return false
	}
	return pvc.Spec.StorageClassName != nil && *pvc.Spec.StorageClassName == p.StorageClass
}

func (p *Provisioner) provisionPending(ctx context.Context) {
	pvcs, err := p.Client.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		if !p.wants(pvc) || time.Since(pvc.CreationTimestamp.Time) < p.BindDelay {
			continue
		}
		if err := p.provision(ctx, pvc); err != nil && !apierrors.IsAlreadyExists(err) {
			fmt.Fprintf(os.Stderr, "process-node: provisioning %s/%s: %v\n", pvc.Namespace, pvc.Name, err)
		}
	}
}

func (p *Provisioner) provision(ctx context.Context, pvc *v1.PersistentVolumeClaim) error {
	name := "pvc-" + string(pvc.UID)
	dir := filepath.Join(p.Dir, name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	_ = os.Chmod(dir, 0o777)
	size := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	if size.IsZero() {
		size = resource.MustParse("1Gi")
	}
	modes := pvc.Spec.AccessModes
	if len(modes) == 0 {
		modes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	}
	hostPathType := v1.HostPathDirectory
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{provisionedByAnnotation: ProvisionerName},
		},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: size},
			AccessModes:                   modes,
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimDelete,
			StorageClassName:              p.StorageClass,
			VolumeMode:                    pvc.Spec.VolumeMode,
			ClaimRef: &v1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: v1.PersistentVolumeSource{
				HostPath: &v1.HostPathVolumeSource{Path: dir, Type: &hostPathType},
			},
		},
	}
	_, err := p.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	return err
}

// deleteReleased deletes the volumes of deleted claims, and their
// directories.
func (p *Provisioner) deleteReleased(ctx context.Context) {
	pvs, err := p.Client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for i := range pvs.Items {
		pv := &pvs.Items[i]
		if pv.Annotations[provisionedByAnnotation] != ProvisionerName || pv.Status.Phase != v1.VolumeReleased ||
			pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete || pv.Spec.HostPath == nil {
			continue
		}
		if err := safeRemoveAll(p.StateDir, pv.Spec.HostPath.Path); err != nil {
			fmt.Fprintf(os.Stderr, "process-node: volume %s: %v\n", pv.Name, err)
			continue
		}
		_ = p.Client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	}
}
