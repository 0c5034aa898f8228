// Package kube writes the Kubernetes manifests that run one mqbench scenario
// split across N pods: a ConfigMap holding the scenario and an Indexed Job
// whose pod k runs shard k+1 of N (`mqbench run --shard-from-env N`), all
// releasing their publishers at one wall-clock instant (--start-at).
//
// mqbench brings no coordinator of its own: Kubernetes runs the instances,
// each computes its share of the scenario deterministically (scenarios.Shard),
// and `mqbench merge` joins the run directories afterwards. The manifests are
// built from the official API types (k8s.io/api), so a field Kubernetes does
// not know cannot be written.
package kube

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/mqbench/mqbench/scenarios"
)

// Where the pods find things.
const (
	ScenarioDir  = "/scenario"     // the ConfigMap's mount
	ScenarioFile = "scenario.yaml" // its one key
	RunsDir      = "/runs"         // the run directories (the PVC, or an emptyDir)
	IndexEnv     = "JOB_COMPLETION_INDEX"
	indexAnnot   = "batch.kubernetes.io/job-completion-index"
	runAsUser    = 65532 // distroless "nonroot", the Dockerfile's user
	containerNam = "mqbench"
)

// Options say what to run where. Scenario is the YAML of the scenario as a
// user would pass it to `mqbench run`.
type Options struct {
	Name     string // Job name (DNS-1123 label); default mqbench-<scenario name>
	Scenario []byte
	// ScenarioName is the scenario's name: field, for labels and the default Name.
	ScenarioName string
	Shards       int
	Broker       string    // the broker every pod connects to: tcp://HOST:PORT, mqtts://, ws://, wss://
	Image        string    // the mqbench image (see the Dockerfile)
	StartAt      time.Time // when every shard releases its publishers
	Namespace    string    // "" = the kubectl context's namespace
	// PVC is an existing PersistentVolumeClaim (ReadWriteMany) mounted at
	// RunsDir so the run directories outlive the pods; without it they are
	// written to an emptyDir and lost with the pod.
	PVC string
	// Args are more `mqbench run` flags passed through, e.g. --set KEY=VALUE.
	Args []string
}

// MaxScenarioBytes is what a ConfigMap can hold (1 MiB of data, less its
// metadata): a larger scenario would be refused by the API server anyway.
const MaxScenarioBytes = 1000 * 1024

func (o *Options) check() error {
	var errs []error
	if o.Name == "" {
		o.Name = "mqbench-" + dnsLabel(o.ScenarioName)
	}
	if msgs := validation.IsDNS1123Label(o.Name); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("job name %q: %s", o.Name, strings.Join(msgs, "; ")))
	}
	// The ConfigMap is named after the Job with a suffix; both must fit.
	if msgs := validation.IsDNS1123Subdomain(o.Name + "-scenario"); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("job name %q is too long for its ConfigMap name: %s", o.Name, strings.Join(msgs, "; ")))
	}
	if o.Shards < 1 || o.Shards > scenarios.MaxShards {
		errs = append(errs, fmt.Errorf("shards %d: must be 1 to %d", o.Shards, scenarios.MaxShards))
	}
	if !strings.Contains(o.Broker, "://") {
		errs = append(errs, fmt.Errorf("broker %q: pods need an address they can reach (tcp://HOST:PORT, mqtts://, ws://, wss://), not a broker mqbench starts", o.Broker))
	}
	if o.Image == "" {
		errs = append(errs, errors.New("image: must not be empty"))
	}
	if len(o.Scenario) == 0 {
		errs = append(errs, errors.New("scenario: empty"))
	} else if len(o.Scenario) > MaxScenarioBytes {
		errs = append(errs, fmt.Errorf("scenario: %d bytes, more than a ConfigMap holds (%d)", len(o.Scenario), MaxScenarioBytes))
	}
	if o.StartAt.IsZero() {
		errs = append(errs, errors.New("start time: must be set"))
	}
	if o.Namespace != "" {
		if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("namespace %q: %s", o.Namespace, strings.Join(msgs, "; ")))
		}
	}
	if o.PVC != "" {
		if msgs := validation.IsDNS1123Subdomain(o.PVC); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("pvc %q: %s", o.PVC, strings.Join(msgs, "; ")))
		}
	}
	return errors.Join(errs...)
}

// dnsLabel makes a scenario name usable in a DNS-1123 label: lower case,
// [a-z0-9-], at most 40 characters so the Job's suffixes still fit.
func dnsLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 40 {
		out = strings.TrimRight(out[:40], "-")
	}
	if out == "" {
		out = "run"
	}
	return out
}

// Manifests are the objects to apply, in the order to apply them.
type Manifests struct {
	ConfigMap *corev1.ConfigMap
	Job       *batchv1.Job
}

// Build makes the manifests o describes.
func Build(o Options) (*Manifests, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	labels := map[string]string{
		"app.kubernetes.io/name":     "mqbench",
		"app.kubernetes.io/instance": o.Name,
		"mqbench.io/scenario":        dnsLabel(o.ScenarioName),
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name + "-scenario", Namespace: o.Namespace, Labels: labels},
		Data:       map[string]string{ScenarioFile: string(o.Scenario)},
	}
	n := int32(o.Shards)
	indexed := batchv1.IndexedCompletion
	// A retried pod would publish its share a second time into the same
	// broker: a failed shard fails the Job instead, and is re-run by hand.
	backoff := int32(0)
	nonRoot := true
	readOnly := true
	noEscalation := false
	uid := int64(runAsUser)
	out := path.Join(RunsDir, o.Name, "shard-$("+IndexEnv+")")
	args := []string{"run", path.Join(ScenarioDir, ScenarioFile),
		"--broker", o.Broker,
		"--shard-from-env", strconv.Itoa(o.Shards),
		"--start-at", o.StartAt.UTC().Format(time.RFC3339),
		"--out", out,
		"--no-progress",
	}
	args = append(args, o.Args...)
	runs := corev1.Volume{Name: "runs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	if o.PVC != "" {
		runs.VolumeSource = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: o.PVC}}
	}
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			CompletionMode: &indexed,
			Completions:    &n,
			Parallelism:    &n,
			BackoffLimit:   &backoff,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					// One shard per node where the cluster has the nodes: the
					// point of sharding is more machines, not more pods on one.
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew:           1,
						TopologyKey:       "kubernetes.io/hostname",
						WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/instance": o.Name}},
					}},
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &nonRoot, RunAsUser: &uid, FSGroup: &uid},
					Containers: []corev1.Container{{
						Name:            containerNam,
						Image:           o.Image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Args:            args,
						Env: []corev1.EnvVar{{
							// Declared, not only injected by the Job controller,
							// so $(JOB_COMPLETION_INDEX) in the args expands.
							Name: IndexEnv,
							ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
								FieldPath: "metadata.annotations['" + indexAnnot + "']",
							}},
						}},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "scenario", MountPath: ScenarioDir, ReadOnly: true},
							{Name: "runs", MountPath: RunsDir},
						},
						SecurityContext: &corev1.SecurityContext{
							ReadOnlyRootFilesystem:   &readOnly,
							AllowPrivilegeEscalation: &noEscalation,
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "scenario", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name},
						}}},
						runs,
					},
				},
			},
		},
	}
	return &Manifests{ConfigMap: cm, Job: job}, nil
}

// YAML is the manifests as one multi-document stream for `kubectl apply -f -`.
func (m *Manifests) YAML() ([]byte, error) {
	var b bytes.Buffer
	for i, obj := range []any{m.ConfigMap, m.Job} {
		y, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("encoding manifest %d: %w", i+1, err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}
